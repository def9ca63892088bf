//! Instance names: the same shape as IR ids, because the default name is
//! the workload's app name and names become directory names.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;

/// `^[a-z][a-z0-9-]{0,62}$`
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InstanceName(String);

/// The longest name: an IR id is at most 63 characters.
const MAX_NAME_LEN: usize = 63;

impl InstanceName {
    pub fn parse(s: &str) -> Result<InstanceName, RuntimeError> {
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if first_ok && rest_ok && s.len() <= MAX_NAME_LEN {
            Ok(InstanceName(s.to_string()))
        } else {
            Err(RuntimeError::InvalidName {
                name: s.to_string(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for InstanceName {
    type Error = RuntimeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        InstanceName::parse(&s)
    }
}

impl From<InstanceName> for String {
    fn from(n: InstanceName) -> String {
        n.0
    }
}

impl fmt::Display for InstanceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ids() {
        for ok in ["a", "hello-app", "x1", &"a".repeat(63)] {
            assert_eq!(InstanceName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_non_ids() {
        for bad in ["", "1a", "Hello", "a_b", "a/b", "..", "-a", &"a".repeat(64)] {
            let err = InstanceName::parse(bad).unwrap_err();
            assert!(err.to_string().contains("instance name"), "{err}");
        }
    }
}
