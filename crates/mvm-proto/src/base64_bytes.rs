//! Binary fields (file contents, process output, stdin) travel as standard
//! base64 strings, since JSON has no byte type. Public for other JSON
//! channels of mvm (the runtime's control channel):
//! `#[serde(with = "mvm_proto::base64_bytes")]` on a `Vec<u8>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&STANDARD.encode(bytes))
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(deserializer)?;
    STANDARD
        .decode(text.as_bytes())
        .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
}
