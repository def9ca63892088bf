//! Secret bindings: which header a `secret_ref` makes the host set on a
//! mediated request, whether that header is one a declaration may set, and
//! how bound hosts compare with egress grants.
//!
//! The header and host rules are public so the SDK spec can render them
//! (`crates/mvm-decl/src/sdk_spec.rs`) and the SDKs check the same thing.

use crate::types::SecretAuth;

/// Headers the host itself must own on a request it makes: framing,
/// connection management and proxy credentials. A secret set into one of
/// them could break the request or smuggle a second one. Lowercase.
pub const HOST_OWNED_HEADERS: &[&str] = &[
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

/// The header `Authorization` that `bearer` and `basic` set.
pub const AUTHORIZATION: &str = "authorization";

/// How the IR spells `auth` (its JSON `type`), for messages.
pub fn auth_name(auth: SecretAuth) -> &'static str {
    match auth {
        SecretAuth::Token => "token",
        SecretAuth::Bearer => "bearer",
        SecretAuth::Basic => "basic",
        SecretAuth::Header => "header",
    }
}

/// RFC 9110 `tchar`: the characters of a header field name.
pub fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Why `name` cannot be the header a secret is set into, if it cannot.
pub fn header_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if !name.chars().all(is_tchar) {
        return Some(
            "is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only, no spaces or \":\")",
        );
    }
    if HOST_OWNED_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
    {
        return Some("is a header the host sets itself on every request");
    }
    None
}

/// The header (lowercase) a binding makes the host set on every request to
/// its hosts; `None` for `token`, which only replaces the guest's own token.
pub fn header_set(auth: SecretAuth, header: Option<&str>) -> Option<String> {
    match auth {
        SecretAuth::Token => None,
        SecretAuth::Bearer | SecretAuth::Basic => Some(AUTHORIZATION.into()),
        SecretAuth::Header => header.map(str::to_ascii_lowercase),
    }
}

/// A host as it is compared with grants and other bindings: DNS names are
/// case-insensitive and a trailing dot names the same host.
pub fn host_key(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names() {
        for ok in ["X-Api-Key", "x_token", "Authorization", "a!#$%&'*+-.^_`|~9"] {
            assert_eq!(header_problem(ok), None, "{ok}");
        }
        for bad in ["", "X Api", "X-Api:", "Ключ", "a\r\nb", "\"q\""] {
            assert!(header_problem(bad).is_some(), "{bad:?}");
        }
        for owned in ["Host", "CONTENT-LENGTH", "te", "Proxy-Authorization"] {
            assert_eq!(
                header_problem(owned),
                Some("is a header the host sets itself on every request"),
                "{owned}"
            );
        }
    }

    #[test]
    fn headers_set_and_host_keys() {
        assert_eq!(header_set(SecretAuth::Token, Some("X")), None);
        assert_eq!(
            header_set(SecretAuth::Basic, None).as_deref(),
            Some("authorization")
        );
        assert_eq!(
            header_set(SecretAuth::Header, Some("X-Key")).as_deref(),
            Some("x-key")
        );
        assert_eq!(host_key("API.OpenAI.com."), "api.openai.com");
        assert_eq!(auth_name(SecretAuth::default()), "token");
    }
}
