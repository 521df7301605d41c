//! Row ids as types, so one kind cannot be passed where another belongs
//! (a tenant id where a key id is expected no longer compiles). Each is the
//! text id the database stores: serialized as that string, read and bound
//! by sqlx as it.
//!
//! An id from a URL is taken as given: an unknown or malformed one simply
//! matches no row, which is the `404` the routes answer.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::types::string_type;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(raw: impl Into<String>) -> Self {
                Self(raw.into())
            }
        }

        string_type!($name);
    };
}

id_type!(
    /// A tenant's row id (16 base62 characters); not its slug, which is the
    /// tenant's name in URLs.
    TenantId
);

id_type!(
    /// An admin account's id (16 base62 characters): a person who signs in
    /// to the admin UI, not a service user.
    AdminId
);

id_type!(
    /// A service user's id (16 base62 characters).
    ServiceUserId
);

id_type!(
    /// An API key's public id (16 base62 characters, minted with the key by
    /// the verification crate's key format).
    KeyId
);

id_type!(
    /// A webhook endpoint's id (`wh_` and 16 base62 characters).
    WebhookEndpointId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialize_and_print_as_their_text() {
        let id = KeyId::new("AbC123");
        assert_eq!(id.to_string(), "AbC123");
        assert_eq!(id.as_str(), "AbC123");
        assert_eq!(serde_json::to_value(&id).ok(), Some("AbC123".into()));
        assert_eq!(serde_json::from_str::<KeyId>("\"AbC123\"").ok(), Some(id));
    }
}
