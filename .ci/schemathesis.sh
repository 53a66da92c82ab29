#!/usr/bin/env bash
# Validates the /openapi.json of a running Tessera with openapi-spec-validator (the document
# itself: OpenAPI 3.1 schema, unique operation ids, resolvable references), then fuzzes
# Tessera against it with schemathesis: no answer may be a 5xx, and every answer must be one
# the document declares (status, content type, headers, body schema). Serves the debug binary (built by `cargo test --workspace --locked`, as .ci/run
# does first, or built here) on a free loopback port, on a fresh SQLite database in a temporary
# directory, and stops it on exit. Traffic goes to 127.0.0.1 only.
#
# SCHEMATHESIS_MAX_TIME sets the seconds of the main run, SCHEMATHESIS_ARGS adds options (e.g.
# `--seed N --report har`), KEEP=1 keeps the temporary directory with the server log, and
# TESSERA_LOG (default `warn`) sets what that log holds.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
# Time budgets, in seconds, of the two runs below: with the install, the whole script takes
# about three minutes on two cores. Schemathesis stops by itself when a budget is spent.
MAX_TIME=${SCHEMATHESIS_MAX_TIME:-120}
LOGOUT_MAX_TIME=30

bin="$PWD/target/debug/tessera"
[ -x "$bin" ] || cargo build --locked -p tessera

work=$(mktemp -d)
server=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== schemathesis $SCHEMATHESIS_VERSION, openapi-spec-validator $OPENAPI_SPEC_VALIDATOR_VERSION"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" \
    "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"
py="$work/venv/bin/python"

port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# Run from the temporary directory so no tessera.toml of the checkout is read.
cd "$work"
export TESSERA_LISTEN="127.0.0.1:$port"
export TESSERA_DATABASE_URL="sqlite://$work/tessera.db"
export TESSERA_PROFILE=dev
# The per-address limit would turn most of the run into 429s. Schemathesis also reuses the
# emails it reads in answers, the admin's among them, in logins with made-up passwords: the
# account lockout would lock out the admin it logs in as. Both are covered by tests/api.
export TESSERA_RATE_LIMIT_PER_IP=0 TESSERA_LOGIN_MAX_FAILURES=1000000
# The lowest argon2 cost the dev profile allows: the run is about answers, not hashing.
export TESSERA_ARGON2_MEMORY_KIB=1024 TESSERA_ARGON2_ITERATIONS=1
export TESSERA_LOG=${TESSERA_LOG:-warn}

secret() { "$py" -c 'import secrets; print(secrets.token_urlsafe(24))'; }
field() { "$py" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# The accounts the run works with: an admin whose credentials schemathesis logs in with (again
# after anything revokes its token), and victims for the operations that would otherwise
# change or delete that admin's own account.
export ST_ADMIN_EMAIL=admin@schemathesis.test
ST_ADMIN_PASSWORD=$(secret)
export ST_ADMIN_PASSWORD
printf '%s\n' "$ST_ADMIN_PASSWORD" | "$bin" users create --email "$ST_ADMIN_EMAIL" --admin >/dev/null
victim() { printf '%s\n' "$2" | "$bin" users create --email "$1" | field id; }
victim_password=$(secret)
export ST_PATCHED_ID ST_DELETED_ID
ST_PATCHED_ID=$(victim patched@schemathesis.test "$victim_password")
ST_DELETED_ID=$(victim deleted@schemathesis.test "$victim_password")
victim patch-me@schemathesis.test "$victim_password" >/dev/null
victim delete-me@schemathesis.test "$victim_password" >/dev/null
client=$("$bin" clients create --name schemathesis --scope read)
export ST_CLIENT_ID ST_CLIENT_SECRET
ST_CLIENT_ID=$(field client_id <<<"$client")
ST_CLIENT_SECRET=$(field client_secret <<<"$client")
export ST_DELETED_CLIENT_ID ST_ROTATED_CLIENT_ID
ST_DELETED_CLIENT_ID=$("$bin" clients create --name deleted | field client_id)
ST_ROTATED_CLIENT_ID=$("$bin" clients create --name rotated | field client_id)

"$bin" serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do
    "$py" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$base/readyz" 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; echo "tessera did not start"; exit 1; }
    sleep 0.2
done
if ! "$py" -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=5).read())' \
    "$base/openapi.json" >"$work/openapi.json" 2>/dev/null; then
    echo "$bin does not serve /openapi.json: an old build? Rebuild it: cargo build --locked -p tessera"
    exit 1
fi

echo "== openapi-spec-validator: /openapi.json"
"$work/venv/bin/openapi-spec-validator" "$work/openapi.json"

# A fresh token of a victim, for the operations on the caller's own account.
login() {
    "$py" - "$base" "$1" "$victim_password" <<'EOF'
import json, sys, urllib.request
base, email, password = sys.argv[1:]
body = json.dumps({"email": email, "password": password}).encode()
request = urllib.request.Request(base + "/v1/auth/login", body, {"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(request, timeout=10))["access_token"])
EOF
}
export ST_PATCH_ME_TOKEN ST_DELETE_ME_TOKEN
ST_PATCH_ME_TOKEN=$(login patch-me@schemathesis.test)
ST_DELETE_ME_TOKEN=$(login delete-me@schemathesis.test)

cat >"$work/schemathesis.toml" <<'EOF'
request-timeout = 10

# Names match the securitySchemes of the document.
[auth.dynamic.openapi.bearer]
path = "/v1/auth/login"
payload = { email = "${ST_ADMIN_EMAIL}", password = "${ST_ADMIN_PASSWORD}" }
extract_selector = "/access_token"
retry_on = [401]

[auth.openapi.client_basic]
username = "${ST_CLIENT_ID}"
password = "${ST_CLIENT_SECRET}"

# Changing or deleting the account schemathesis logs in with would end the run's access.
[[operations]]
include-name = "PATCH /v1/users/{id}"
parameters = { "path.id" = "${ST_PATCHED_ID}" }

[[operations]]
include-name = "DELETE /v1/users/{id}"
parameters = { "path.id" = "${ST_DELETED_ID}" }

[[operations]]
include-name = "PATCH /v1/users/me"
headers = { Authorization = "Bearer ${ST_PATCH_ME_TOKEN}" }

[[operations]]
include-name = "DELETE /v1/users/me"
headers = { Authorization = "Bearer ${ST_DELETE_ME_TOKEN}" }

# Likewise for the client it authenticates with.
[[operations]]
include-name = "DELETE /v1/clients/{client_id}"
parameters = { "path.client_id" = "${ST_DELETED_CLIENT_ID}" }

[[operations]]
include-name = "POST /v1/clients/{client_id}/secret"
parameters = { "path.client_id" = "${ST_ROTATED_CLIENT_ID}" }

# `wait` long-polls for up to 30 s per request; tests/api/revocations.rs covers it.
[[operations]]
include-name = "GET /v1/revocations"
parameters = { "query.wait" = "0" }
EOF

# Checks: every one schemathesis has, but three that are unsound here:
# - positive_data_acceptance expects every schema-valid request to succeed, but passwords must
#   also be hard to guess, usernames and scopes have character rules, cursors must be ones the
#   server handed out: rules a JSON schema does not express, answered with a documented 4xx;
# - negative_data_rejection expects every schema-invalid request to fail, but the server
#   clamps page sizes, ignores unknown query parameters and fields, and serde reads a JSON
#   array as a struct;
# - ensure_resource_availability expects a resource just created to be found by the next
#   operation, but the deleting operations are pinned to victims above.
checks=(--checks all --exclude-checks "positive_data_acceptance,negative_data_rejection,ensure_resource_availability")
run() {
    # SCHEMATHESIS_ARGS is split into words on purpose.
    # shellcheck disable=SC2086
    "$work/venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run "$base/openapi.json" \
        "${checks[@]}" --no-color "$@" ${SCHEMATHESIS_ARGS:-}
}
# Logging out revokes the admin's token, and schemathesis logs in again: run the operations
# that do it on their own, so they do not turn the other operations' answers into 401s. The
# session list gives the session deletion ids to work on.
session_enders=(--include-name "POST /v1/auth/logout" --include-name "POST /v1/auth/logout-all"
    --include-name "DELETE /v1/users/me/sessions/{id}" --include-name "GET /v1/users/me/sessions")

status=0
echo "== schemathesis against $base: everything but logging out"
run --workers 2 --max-time "$MAX_TIME" --exclude-name "POST /v1/auth/logout" \
    --exclude-name "POST /v1/auth/logout-all" --exclude-name "DELETE /v1/users/me/sessions/{id}" || status=$?
echo "== schemathesis against $base: logging out"
run --workers 1 --max-time "$LOGOUT_MAX_TIME" "${session_enders[@]}" || status=$?

# Also what schemathesis does not check, such as its own logins.
if grep -q "panicked\|internal error" "$work/server.log"; then
    echo "== server errors logged"
    grep "panicked\|internal error" "$work/server.log" | head -50
    status=1
fi
exit "$status"
