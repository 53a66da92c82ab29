use serde::{Deserialize, Serialize};

/// The claims of a Tessera access token (RFC 9068 profile, header `typ: at+jwt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Claims {
    /// The configured issuer URL.
    pub iss: String,
    /// A user id (UUID) for people, the `client_id` for service clients.
    pub sub: String,
    /// The configured audience.
    pub aud: Audience,
    /// Expiry, NumericDate seconds.
    pub exp: i64,
    /// Issued at, NumericDate seconds.
    pub iat: i64,
    /// Not before, NumericDate seconds.
    pub nbf: i64,
    /// Unique per token; what revocation of one token names.
    pub jti: String,
    /// Space-separated granted scopes; may be empty.
    #[serde(default)]
    pub scope: String,
    /// The client the token was issued to (`tessera` for people).
    pub client_id: String,
    /// Roles of the subject, e.g. `["admin"]`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Session id (people only): the refresh-token family the token came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub sid: Option<String>,
    /// `true` only for a token issued straight from a password check (people only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub fresh: Option<bool>,
    /// How the person signed in (RFC 8176 values: `pwd`, `otp`, `hwk`, `user`, `mfa`), people only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub amr: Option<Vec<String>>,
}

impl Claims {
    /// Whether the token carries `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the token was granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }

    /// Whether this token was issued straight from a password check.
    pub fn is_fresh(&self) -> bool {
        self.fresh == Some(true)
    }

    /// Whether the subject is a person (the token carries a session) rather than a client.
    pub fn is_person(&self) -> bool {
        self.sid.is_some()
    }
}

/// The `aud` claim: one string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Audience {
    /// A single audience, serialized as a string.
    One(String),
    /// Several audiences, serialized as an array.
    Many(Vec<String>),
}

impl Audience {
    /// Builds the claim from configured audiences: a string when there is one.
    pub fn from_list(list: &[String]) -> Self {
        match list {
            [one] => Audience::One(one.clone()),
            many => Audience::Many(many.to_vec()),
        }
    }

    /// Whether `aud` names `audience`.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(a) => a == audience,
            Audience::Many(list) => list.iter().any(|a| a == audience),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_audience_is_a_string_and_several_are_an_array() {
        let one = serde_json::to_value(Audience::from_list(&["a".into()])).unwrap();
        assert_eq!(one, serde_json::json!("a"));
        let many = serde_json::to_value(Audience::from_list(&["a".into(), "b".into()])).unwrap();
        assert_eq!(many, serde_json::json!(["a", "b"]));
    }

    #[test]
    fn client_tokens_have_no_sid_or_fresh_claim() {
        let claims = Claims {
            iss: "i".into(),
            sub: "svc".into(),
            aud: Audience::One("i".into()),
            exp: 2,
            iat: 1,
            nbf: 1,
            jti: "j".into(),
            scope: "a b".into(),
            client_id: "svc".into(),
            roles: vec![],
            sid: None,
            fresh: None,
            amr: None,
        };
        let json = serde_json::to_value(&claims).unwrap();
        assert!(json.get("sid").is_none() && json.get("fresh").is_none());
        assert!(claims.has_scope("b") && !claims.has_scope("a b"));
    }
}
