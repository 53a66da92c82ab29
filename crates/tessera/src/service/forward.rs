//! Forward authentication: the decision behind `/v1/auth/verify`, which gateways (nginx
//! `auth_request`, Caddy `forward_auth`, Traefik `ForwardAuth`) call before letting a request
//! through to the service they protect.

use super::Tessera;
use super::error::{Error, Result, TokenError};
use std::sync::Arc;
use tessera_verify::Claims;

/// What a gateway demands of a token beyond its being valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    /// Scopes the token must all carry.
    pub scopes: Vec<String>,
    /// A role the token must carry.
    pub role: Option<String>,
    /// An audience the token's `aud` must contain.
    pub audience: Option<String>,
}

impl Requirements {
    /// From the query parameters: `scope` space-separated, `role`, `aud`; empty means absent.
    pub fn new(scope: Option<&str>, role: Option<&str>, audience: Option<&str>) -> Self {
        let present = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        Requirements {
            scopes: scope.unwrap_or_default().split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            role: present(role),
            audience: present(audience),
        }
    }
}

/// Why a valid token does not meet the requirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unmet {
    /// The token is for another audience: to this resource it is not a valid token.
    #[error("the token is for another audience")]
    Audience,
    /// A required scope is missing.
    #[error("the token lacks a required scope")]
    Scope,
    /// The required role is missing.
    #[error("the token lacks the required role")]
    Role,
}

/// Whether `claims` meet `required`: the audience first (a token for another resource is
/// no token here), then the scopes, then the role.
pub fn meets(claims: &Claims, required: &Requirements) -> Result<(), Unmet> {
    if required.audience.as_deref().is_some_and(|aud| !claims.aud.contains(aud)) {
        return Err(Unmet::Audience);
    }
    let granted: Vec<&str> = claims.scope.split(' ').filter(|s| !s.is_empty()).collect();
    if !required.scopes.iter().all(|s| granted.contains(&s.as_str())) {
        return Err(Unmet::Scope);
    }
    if required.role.as_deref().is_some_and(|role| !claims.roles.iter().any(|r| r == role)) {
        return Err(Unmet::Role);
    }
    Ok(())
}

impl Tessera {
    /// The forward-authentication check: the token must be valid (for any audience Tessera
    /// issues to, unless `required` names one) and meet `required`.
    pub fn verify_for_gateway(&self, token: Option<&str>, required: &Requirements) -> Result<Arc<Claims>> {
        let claims = self.check_token(token.ok_or(TokenError::Missing).map_err(Error::Bearer)?).map_err(Error::Bearer)?;
        match meets(&claims, required) {
            Ok(()) => Ok(claims),
            Err(Unmet::Audience) => Err(Error::Bearer(TokenError::Invalid("the token is for another audience"))),
            Err(Unmet::Scope) => Err(Error::InsufficientScope),
            Err(Unmet::Role) => Err(Error::Forbidden("the token lacks the required role")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_verify::Audience;

    fn claims(aud: &[&str], scope: &str, roles: &[&str]) -> Claims {
        Claims {
            iss: "https://id.example".into(),
            sub: "svc_1".into(),
            aud: Audience::from_list(&aud.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>()),
            exp: 2,
            iat: 1,
            nbf: 1,
            jti: "j".into(),
            scope: scope.into(),
            client_id: "svc_1".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            sid: None,
            fresh: None,
            amr: None,
        }
    }

    #[test]
    fn no_requirements_are_met_by_any_valid_token() {
        assert_eq!(meets(&claims(&["a"], "", &[]), &Requirements::new(None, Some(""), Some(" "))), Ok(()));
    }

    #[test]
    fn every_required_scope_must_be_granted() {
        let c = claims(&["a"], "notes:read notes:write", &[]);
        assert_eq!(meets(&c, &Requirements::new(Some("notes:write  notes:read"), None, None)), Ok(()));
        assert_eq!(meets(&c, &Requirements::new(Some("notes:read admin"), None, None)), Err(Unmet::Scope));
        assert_eq!(meets(&c, &Requirements::new(Some("notes"), None, None)), Err(Unmet::Scope));
    }

    #[test]
    fn the_required_role_must_be_carried() {
        let c = claims(&["a"], "", &["admin", "ops"]);
        assert_eq!(meets(&c, &Requirements::new(None, Some("ops"), None)), Ok(()));
        assert_eq!(meets(&c, &Requirements::new(None, Some("billing"), None)), Err(Unmet::Role));
    }

    #[test]
    fn the_audience_is_checked_before_scopes_and_roles() {
        let c = claims(&["https://notes.example", "https://files.example"], "", &[]);
        assert_eq!(meets(&c, &Requirements::new(None, None, Some("https://files.example"))), Ok(()));
        let wrong = Requirements::new(Some("missing"), Some("missing"), Some("https://billing.example"));
        assert_eq!(meets(&c, &wrong), Err(Unmet::Audience));
    }
}
