// Passkey ceremonies of Tessera's pages (served by Tessera itself; the Content-Security-Policy
// allows no other script):
// - on /login, the button #passkey signs in with a passkey alone, and where the browser offers
//   it, the identifier field's autofill lists passkeys too (conditional mediation);
// - in the second step of a password sign-in, #passkey uses one of the person's passkeys;
// - on /account, #add-passkey adds one.
// Each ceremony fetches its options from the form's data-options address (a POST carrying the
// form's CSRF token), asks the browser, and submits the form with the credential as JSON.
"use strict";

(() => {
  const toBytes = (text) => {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  };
  const toText = (buffer) => {
    const bytes = new Uint8Array(buffer);
    let binary = "";
    for (const b of bytes) binary += String.fromCharCode(b);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };

  const creationOptions = (o) => ({
    ...o,
    challenge: toBytes(o.challenge),
    user: { ...o.user, id: toBytes(o.user.id) },
    excludeCredentials: (o.excludeCredentials || []).map((c) => ({ ...c, id: toBytes(c.id) })),
  });
  const requestOptions = (o) => ({
    ...o,
    challenge: toBytes(o.challenge),
    allowCredentials: (o.allowCredentials || []).map((c) => ({ ...c, id: toBytes(c.id) })),
  });

  const registrationJson = (c) => ({
    id: c.id,
    rawId: toText(c.rawId),
    type: c.type,
    response: {
      clientDataJSON: toText(c.response.clientDataJSON),
      attestationObject: toText(c.response.attestationObject),
      transports: c.response.getTransports ? c.response.getTransports() : [],
    },
    clientExtensionResults: c.getClientExtensionResults(),
  });
  const assertionJson = (c) => ({
    id: c.id,
    rawId: toText(c.rawId),
    type: c.type,
    response: {
      clientDataJSON: toText(c.response.clientDataJSON),
      authenticatorData: toText(c.response.authenticatorData),
      signature: toText(c.response.signature),
      userHandle: c.response.userHandle ? toText(c.response.userHandle) : null,
    },
    clientExtensionResults: c.getClientExtensionResults(),
  });

  const field = (form, name) => form.querySelector(`input[name="${name}"]`);

  const showError = (element, message) => {
    if (!element) return;
    element.textContent = message;
    element.hidden = false;
  };

  // The options of a new ceremony, or null after showing why there are none.
  const fetchOptions = async (form, error, extra) => {
    const body = new URLSearchParams({ csrf_token: field(form, "csrf_token").value, ...extra });
    const response = await fetch(form.dataset.options, { method: "POST", body, credentials: "same-origin" });
    const answer = await response.json().catch(() => ({}));
    if (response.ok) return answer;
    if (answer.code === "fresh_token_required") {
      window.location.assign("/login?return_to=%2Faccount");
      return null;
    }
    showError(error, answer.detail || "Passkeys are not available right now. Try again later.");
    return null;
  };

  const submit = (form, challengeId, credential) => {
    field(form, "challenge_id").value = challengeId;
    field(form, "credential").value = JSON.stringify(credential);
    form.submit();
  };

  const signIn = (form) => {
    const button = document.getElementById("passkey");
    const error = document.getElementById("passkey-error");
    const mfaToken = field(form, "mfa_token").value;
    const extra = mfaToken ? { mfa_token: mfaToken } : {};
    let pending = null;

    const run = async (mediation) => {
      const ceremony = await fetchOptions(form, error, extra);
      if (!ceremony) return;
      pending = new AbortController();
      const request = { publicKey: requestOptions(ceremony.options), signal: pending.signal };
      if (mediation) request.mediation = mediation;
      const credential = await navigator.credentials.get(request);
      if (credential) submit(form, ceremony.challenge_id, assertionJson(credential));
    };

    if (!window.PublicKeyCredential || !navigator.credentials) {
      button.hidden = true;
      return;
    }
    button.addEventListener("click", () => {
      if (pending) pending.abort();
      run(null).catch((e) => {
        if (e && e.name === "AbortError") return;
        showError(error, "No passkey was used. Try again, or use your password.");
      });
    });
    // The identifier field's autofill: only on the first step, where the browser supports it.
    if (!mfaToken && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable()
        .then((available) => (available ? run("conditional") : null))
        .catch(() => {});
    }
  };

  const enrol = (form) => {
    const button = document.getElementById("add-passkey");
    const error = document.getElementById("add-passkey-error");
    if (!window.PublicKeyCredential || !navigator.credentials) {
      button.disabled = true;
      showError(error, "This browser cannot make passkeys.");
      return;
    }
    button.addEventListener("click", async () => {
      try {
        const ceremony = await fetchOptions(form, error, {});
        if (!ceremony) return;
        const credential = await navigator.credentials.create({ publicKey: creationOptions(ceremony.options) });
        if (credential) submit(form, ceremony.challenge_id, registrationJson(credential));
      } catch (e) {
        showError(error, "No passkey was added. Try again.");
      }
    });
  };

  document.addEventListener("DOMContentLoaded", () => {
    const signInForm = document.getElementById("passkey-form");
    if (signInForm) signIn(signInForm);
    const enrolForm = document.getElementById("add-passkey-form");
    if (enrolForm) enrol(enrolForm);
  });
})();
