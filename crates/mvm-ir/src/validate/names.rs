//! The name and identifier grammars of the IR, written out by hand: each is a
//! short character-class pattern, not worth a regex engine.

/// `^[a-z][a-z0-9-]{0,62}$`: workload id, app, entrypoint, volume, addon names.
pub(super) fn is_id(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && s.len() <= 63
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `^[A-Za-z_][A-Za-z0-9_]*$`: environment variable names.
pub(super) fn is_env_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `^[a-z0-9][a-z0-9._-]{0,127}$`: secret names.
pub(super) fn is_secret_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.len() <= 128
        && bytes.all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// An ASCII identifier: `^[A-Za-z_][A-Za-z0-9_]*$`, plus `$` when `dollar`
/// (JavaScript allows it; Python does not).
pub(super) fn is_identifier(s: &str, dollar: bool) -> bool {
    let extra = |b: u8| b == b'_' || (dollar && b == b'$');
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || extra(b))
        && bytes.all(|b| b.is_ascii_alphanumeric() || extra(b))
}

/// Identifiers joined by dots, e.g. `pkg.sub.module`.
pub(super) fn is_dotted_path(s: &str, dollar: bool) -> bool {
    s.split('.').all(|part| is_identifier(part, dollar))
}

/// `^[A-Za-z_][A-Za-z0-9_.+-]*$`: a nixpkgs attribute name.
pub(super) fn is_nix_package(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'))
}

/// `sha256:` followed by 64 lowercase hex digits.
pub(super) fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Whether an env key names a credential (`API_KEY`, `github_token`, ...).
pub(super) fn looks_like_credential(key: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    ["KEY", "TOKEN", "SECRET", "PASSWORD"]
        .iter()
        .any(|suffix| upper.ends_with(suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(is_id("a") && is_id("hello-app") && is_id("a1-") && is_id(&"a".repeat(63)));
        assert!(!is_id("") && !is_id("1a") && !is_id("-a") && !is_id("A") && !is_id("a_b"));
        assert!(!is_id(&"a".repeat(64)) && !is_id("é"));
    }

    #[test]
    fn env_and_secret_names() {
        assert!(is_env_name("_") && is_env_name("API_KEY") && is_env_name("a1"));
        assert!(
            !is_env_name("") && !is_env_name("1A") && !is_env_name("A-B") && !is_env_name("A B")
        );
        assert!(
            is_secret_name("api-key")
                && is_secret_name("0.a_b-c")
                && is_secret_name(&"a".repeat(128))
        );
        assert!(
            !is_secret_name("")
                && !is_secret_name(".a")
                && !is_secret_name("Api")
                && !is_secret_name(&"a".repeat(129))
        );
    }

    #[test]
    fn identifiers_and_modules() {
        assert!(
            is_identifier("greet", false)
                && is_identifier("_x1", false)
                && is_identifier("$x", true)
        );
        assert!(
            !is_identifier("$x", false) && !is_identifier("1x", false) && !is_identifier("", false)
        );
        assert!(is_dotted_path("app", false) && is_dotted_path("pkg.mod_1", false));
        assert!(
            !is_dotted_path("pkg.", false)
                && !is_dotted_path(".pkg", false)
                && !is_dotted_path("a/b", false)
        );
    }

    #[test]
    fn nix_packages_and_digests() {
        assert!(
            is_nix_package("python312")
                && is_nix_package("gcc-unwrapped")
                && is_nix_package("python3Packages.numpy")
        );
        assert!(
            !is_nix_package("")
                && !is_nix_package("1abc")
                && !is_nix_package("pkgs hello")
                && !is_nix_package("a;b")
        );
        let hex = "0123456789abcdef".repeat(4);
        assert!(is_sha256_digest(&format!("sha256:{hex}")));
        assert!(!is_sha256_digest(&format!("sha256:{}", hex.to_uppercase())));
        assert!(
            !is_sha256_digest(&format!("sha512:{hex}"))
                && !is_sha256_digest(&format!("sha256:{}", &hex[1..]))
        );
    }

    #[test]
    fn credential_keys() {
        for key in [
            "API_KEY",
            "api_key",
            "GITHUB_TOKEN",
            "Client_Secret",
            "DB_PASSWORD",
            "KEY",
        ] {
            assert!(looks_like_credential(key), "{key}");
        }
        for key in ["MODEL_PATH", "KEYS", "TOKEN_URL", "PASSWORD_FILE"] {
            assert!(!looks_like_credential(key), "{key}");
        }
    }
}
