use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A new random id.
            pub fn new_random() -> Self {
                $name(Uuid::new_v4())
            }

            /// Wraps an existing UUID.
            pub fn from_uuid(id: Uuid) -> Self {
                $name(id)
            }

            /// The UUID inside.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(s).map($name)
            }
        }
    };
}

uuid_id!(
    /// Identifies a person's account; the `sub` of their tokens.
    UserId
);
uuid_id!(
    /// Identifies a session: one refresh-token family, the `sid` of its access tokens.
    SessionId
);
uuid_id!(
    /// Identifies a browser session (the sign-in behind Tessera's cookie): the `sid` of
    /// id_tokens, random and public. The cookie itself holds a separate secret.
    BrowserSessionId
);

impl UserId {
    /// Ids of new users sort by creation time (UUIDv7), which makes them a stable cursor.
    pub fn new_time_ordered() -> Self {
        UserId(Uuid::now_v7())
    }
}

/// Identifies a service client (OAuth 2.0 `client_id`): `svc_` and 22 base64url characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

impl ClientId {
    /// The built-in public first-party client that people's tokens are issued to.
    pub const FIRST_PARTY: &'static str = "tessera";

    /// A new random client id: `svc_` and 128 random bits, base64url.
    pub fn generate() -> Result<Self, aws_lc_rs::error::Unspecified> {
        use base64::Engine;
        let mut bytes = [0u8; 16];
        aws_lc_rs::rand::fill(&mut bytes)?;
        Ok(ClientId(format!("svc_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))))
    }

    /// A client id from a request, when it has the shape of one (1 to 64 of `A-Z a-z 0-9 _ -`);
    /// anything else cannot name a client and is not worth a look-up.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = (1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| ClientId(raw.to_owned()))
    }

    /// Wraps a client id read from storage.
    pub fn new(id: impl Into<String>) -> Self {
        ClientId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
