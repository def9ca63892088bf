//! The IR's secret-name rule. mvm-ir keeps its `is_secret_name` private
//! (`pub(super)` in validate/names.rs), so it is replicated here exactly;
//! the test below pins the same cases as the IR's own test.

/// `^[a-z0-9][a-z0-9._-]{0,127}$`.
pub fn is_secret_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.len() <= 128
        && bytes.all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::is_secret_name;

    #[test]
    fn the_irs_rule() {
        assert!(is_secret_name("api-key"));
        assert!(is_secret_name("0.a_b-c"));
        assert!(is_secret_name(&"a".repeat(128)));
        assert!(!is_secret_name(""));
        assert!(!is_secret_name(".a"));
        assert!(!is_secret_name("Api"));
        assert!(!is_secret_name(&"a".repeat(129)));
        assert!(!is_secret_name("a/b"));
        assert!(!is_secret_name("a b"));
        assert!(!is_secret_name("_a"));
        assert!(!is_secret_name("a\n"));
    }
}
