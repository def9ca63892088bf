//! The IR's name and path grammars that the back half relies on, repeated
//! here because this crate must not depend on the IR. A test in
//! mvm-compile checks each against the IR validator's verdicts.

/// `^[a-z][a-z0-9-]{0,62}$`: these names become file names in the store.
pub fn is_id(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(b'a'..=b'z'))
        && s.len() <= 63
        && b.all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-'))
}

/// `^[A-Za-z_][A-Za-z0-9_]*$`
pub fn is_env_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// `^[a-z0-9][a-z0-9._-]{0,127}$`
pub fn is_secret_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(b'a'..=b'z' | b'0'..=b'9'))
        && s.len() <= 128
        && b.all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
}

/// An HTTP field name (RFC 9110 token) the guest-facing host may set for a
/// secret: not one that frames the request or belongs to the connection.
pub fn is_header_name(s: &str) -> bool {
    const OWNED: &[&str] = &[
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
    ];
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
        && !OWNED.iter().any(|o| o.eq_ignore_ascii_case(s))
}

/// A concrete host a secret may be bound to: a DNS name or an IP literal,
/// no port, no wildcard (the IR validator decides the finer points).
pub fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".-:[]".contains(&c))
}

/// 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Why a guest path (working directory, mount target) is unusable.
pub fn guest_path_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        Some("is not absolute")
    } else if path.split('/').any(|c| c == "..") {
        Some("has a `..` component")
    } else if path.contains('\0') {
        Some("contains a NUL character")
    } else {
        None
    }
}

/// Why a path inside the source bundle (the lockfile) is not a plain
/// relative path that stays inside it.
pub fn bundle_path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        Some("is empty")
    } else if path.starts_with('/') || path.starts_with('\\') || path.starts_with('~') {
        Some("is absolute")
    } else if path.split(['/', '\\']).any(|c| c == "..") {
        Some("has a `..` component")
    } else if path.contains('\0') {
        Some("contains a NUL character")
    } else {
        None
    }
}
