//! What a key is: its format and parsing, the base62 alphabet and checksum,
//! the peppered hash stored in its place, its lifecycle state, and the OAuth
//! tokens made in the same format.

pub(crate) mod base62;
mod format;
pub mod pepper;
pub mod state;
pub mod token;

pub use format::{
    ApiKey, InvalidPrefix, KEY_ID_LEN, KeyPrefix, MAX_KEY_LEN, MalformedKey, SECRET_LEN,
};
pub(crate) use format::{check_id_secret_checksum, push_id_secret_checksum};
