//! The instance's secrets as the broker uses them: which token stands for
//! which secret, which secrets a destination gets without asking, and the
//! filters that turn values back into tokens (responses) or names (logs).

use base64::Engine;
use reqwest::header::{HeaderName, HeaderValue};
use zeroize::Zeroizing;

use crate::redact::{Redactor, Replacer};
use crate::{SetupError, TOKEN_PREFIX};

/// How the host applies a secret to a mediated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Only where the guest put the secret's token (in a header value).
    Token,
    /// `Authorization: Bearer VALUE` on every request to a bound host.
    Bearer,
    /// `Authorization: Basic base64(VALUE)` on every request to a bound
    /// host (VALUE is `user:password`).
    Basic,
    /// `NAME: VALUE` on every request to a bound host.
    Header(String),
}

/// One env var's secret reference, as `up` resolved it.
pub struct Secret {
    /// The secret's name (never secret).
    pub name: String,
    /// The opaque token the guest sees, e.g. `mvm-secret-ref:api-key:<32 hex>`.
    pub token: String,
    pub auth: Auth,
    /// Hosts the value may be sent to (compared lowercase); empty: any
    /// granted host.
    pub hosts: Vec<String>,
    pub value: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("auth", &self.auth)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl Secret {
    /// May this secret's value go to `host` (lowercase, as a grant writes it)?
    pub(crate) fn bound_to(&self, host: &str) -> bool {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        self.hosts.is_empty()
            || self.hosts.iter().any(|h| {
                let h = h.trim_end_matches('.');
                h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(bare)
            })
    }

    /// The header the host sets for this secret without the guest asking,
    /// if its kind sets one.
    pub(crate) fn auto_header(&self) -> Option<(HeaderName, Zeroizing<Vec<u8>>)> {
        let authorization = reqwest::header::AUTHORIZATION;
        match &self.auth {
            Auth::Token => None,
            Auth::Bearer => {
                let mut v = Zeroizing::new(b"Bearer ".to_vec());
                v.extend_from_slice(&self.value);
                Some((authorization, v))
            }
            Auth::Basic => {
                let mut v = Zeroizing::new(b"Basic ".to_vec());
                v.extend_from_slice(self.basic().as_bytes());
                Some((authorization, v))
            }
            // Checked in `Prepared::new`.
            Auth::Header(name) => HeaderName::from_bytes(name.as_bytes())
                .ok()
                .map(|n| (n, self.value.clone())),
        }
    }

    fn basic(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*self.value))
    }
}

/// The secrets, checked once and indexed for every call.
pub(crate) struct Prepared {
    pub(crate) secrets: Vec<Secret>,
    /// Values (and base64 for basic) → the secret's token.
    pub(crate) to_tokens: Replacer,
    /// Values (and base64 for basic) → `[secret:NAME]`.
    pub(crate) redactor: Redactor,
}

impl Prepared {
    pub(crate) fn new(
        secrets: Vec<Secret>,
        extra: Vec<(String, Zeroizing<Vec<u8>>)>,
    ) -> Result<Prepared, SetupError> {
        for s in &secrets {
            if !s.token.starts_with(TOKEN_PREFIX) || s.token.len() <= TOKEN_PREFIX.len() {
                return Err(SetupError::Secret {
                    name: s.name.clone(),
                    why: format!("its token does not start with {TOKEN_PREFIX}"),
                });
            }
            if let Auth::Header(h) = &s.auth {
                let name =
                    HeaderName::from_bytes(h.as_bytes()).map_err(|_| SetupError::Secret {
                        name: s.name.clone(),
                        why: format!("`{}` is not a header name", mvm_ir::text::escape_control(h)),
                    })?;
                if crate::request::shapes_answer(name.as_str()) {
                    return Err(SetupError::Secret {
                        name: s.name.clone(),
                        why: format!(
                            "header {name} is the host's own (it asks for whole, uncompressed answers); it cannot carry a secret"
                        ),
                    });
                }
                if crate::request::reserved(name.as_str()) {
                    return Err(SetupError::Secret {
                        name: s.name.clone(),
                        why: format!(
                            "header {name} is the HTTP client's own; it cannot carry a secret"
                        ),
                    });
                }
            }
            // A value the host places in a header must be one a header can
            // hold; found here, not on the first request.
            if s.auth != Auth::Token
                && let Some((_, v)) = s.auto_header()
                && HeaderValue::from_bytes(&v).is_err()
            {
                return Err(SetupError::Secret {
                    name: s.name.clone(),
                    why: "its value holds a character a header cannot carry (a control character or newline)".into(),
                });
            }
        }
        let mut to_tokens = Vec::new();
        let mut to_names = Vec::new();
        for s in &secrets {
            for v in crate::redact::spellings(&s.value) {
                to_tokens.push((v.clone(), s.token.as_bytes().to_vec()));
                to_names.push((v, format!("[secret:{}]", s.name).into_bytes()));
            }
        }
        for (name, value) in extra {
            for v in crate::redact::spellings(&value) {
                to_tokens.push((v.clone(), format!("[secret:{name}]").into_bytes()));
                to_names.push((v, format!("[secret:{name}]").into_bytes()));
            }
        }
        let prepared = Prepared {
            secrets,
            to_tokens: Replacer::new(to_tokens),
            redactor: Redactor::from_pairs(to_names),
        };
        if prepared.to_tokens.is_broken() || prepared.redactor.is_broken() {
            return Err(SetupError::Secret {
                name: "(all)".into(),
                why: "the values are too many or too long to be redacted".into(),
            });
        }
        Ok(prepared)
    }

    /// `value` with its token replaced by the secret's value, and which
    /// secret that was (none: no token in it). A token is replaced only
    /// where a credential goes: the whole value (`TOKEN`), or one
    /// auth-scheme word, a single space and the token (`Bearer TOKEN`).
    /// Anywhere else a bound host might store the value and hand it back
    /// later, unfiltered (a cookie, a user agent).
    pub(crate) fn substitute(
        &self,
        value: &str,
    ) -> Result<(Zeroizing<Vec<u8>>, Option<usize>), Misuse> {
        let bytes = value.as_bytes();
        let Some(start) = find(bytes, TOKEN_PREFIX.as_bytes()) else {
            return Ok((Zeroizing::new(bytes.to_vec()), None));
        };
        let rest = &bytes[start..];
        // The longest token of this instance starting here (a handful of
        // secrets: a scan is enough).
        let Some(i) = self
            .secrets
            .iter()
            .enumerate()
            .filter(|(_, s)| rest.starts_with(s.token.as_bytes()))
            .max_by_key(|(_, s)| s.token.len())
            .map(|(i, _)| i)
        else {
            return Err(Misuse::Unknown);
        };
        let end = start + self.secrets[i].token.len();
        match bytes.get(end) {
            // `...:<hex>` followed by more token characters is some other token.
            Some(&b) if is_token_byte(b) => return Err(Misuse::Unknown),
            Some(_) => return Err(Misuse::Misplaced),
            None => {}
        }
        if start > 0 && !is_scheme_and_space(&bytes[..start]) {
            return Err(Misuse::Misplaced);
        }
        let mut out = Zeroizing::new(Vec::with_capacity(start + self.secrets[i].value.len()));
        out.extend_from_slice(&bytes[..start]);
        out.extend_from_slice(&self.secrets[i].value);
        Ok((out, Some(i)))
    }
}

/// Why a header's token is not replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Misuse {
    /// Not a token of this instance.
    Unknown,
    /// A token where a credential does not go (see [`Prepared::substitute`]).
    Misplaced,
}

/// `Scheme ` before a token: a letter, then letters, digits or `._~+/-`
/// (RFC 9110's token68-ish scheme names), then exactly one space.
fn is_scheme_and_space(head: &[u8]) -> bool {
    let Some((b' ', word)) = head.split_last() else {
        return false;
    };
    word.first().is_some_and(u8::is_ascii_alphabetic)
        && word.iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'+' | b'/' | b'-')
        })
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':')
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, auth: Auth, hosts: &[&str], value: &str) -> Secret {
        Secret {
            name: name.into(),
            token: format!("{TOKEN_PREFIX}{name}:0123456789abcdef0123456789abcdef"),
            auth,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            value: Zeroizing::new(value.as_bytes().to_vec()),
        }
    }

    #[test]
    fn tokens_are_replaced_whole_and_unknown_ones_refused() {
        let p = Prepared::new(
            vec![
                secret("a", Auth::Token, &[], "VALUE-A"),
                secret("ab", Auth::Token, &[], "VALUE-AB"),
            ],
            vec![],
        )
        .unwrap();
        let ta = p.secrets[0].token.clone();
        let tab = p.secrets[1].token.clone();
        let (v, used) = p.substitute(&tab).unwrap();
        assert_eq!((&v[..], used), (&b"VALUE-AB"[..], Some(1)));
        for (scheme, want) in [
            ("Bearer ", "Bearer VALUE-A"),
            ("token ", "token VALUE-A"),
            ("X.y~z+/-1 ", "X.y~z+/-1 VALUE-A"),
        ] {
            let (v, used) = p.substitute(&format!("{scheme}{ta}")).unwrap();
            assert_eq!((&v[..], used), (want.as_bytes(), Some(0)), "{scheme}");
        }
        let (v, used) = p.substitute("no token").unwrap();
        assert_eq!((&v[..], used), (&b"no token"[..], None));
        for bad in [
            format!("{TOKEN_PREFIX}a:ffffffffffffffffffffffffffffffff"),
            format!("{ta}0"),
            format!("{ta}:x"),
            TOKEN_PREFIX.to_string(),
            format!("x{}", &ta[..ta.len() - 1]),
        ] {
            assert_eq!(p.substitute(&bad).unwrap_err(), Misuse::Unknown, "{bad}");
        }
        // Anywhere a server might keep the value and show it back later.
        for misplaced in [
            format!("x {ta} y"),
            format!("s={ta}"),
            format!("{ta} "),
            format!("Bearer  {ta}"),
            format!(" {ta}"),
            format!("1x {ta}"),
            format!("a b {ta}"),
            format!("Bearer\t{ta}"),
            format!("{ta}, {tab}"),
            format!("Bearer {ta} {tab}"),
        ] {
            assert_eq!(
                p.substitute(&misplaced).unwrap_err(),
                Misuse::Misplaced,
                "{misplaced}"
            );
        }
        let none = Prepared::new(vec![], vec![]).unwrap();
        assert!(none.substitute(&ta).is_err());
    }

    #[test]
    fn values_turn_back_into_tokens_and_names() {
        let p = Prepared::new(
            vec![secret("b", Auth::Basic, &["x.example"], "user:pw")],
            vec![("search".into(), Zeroizing::new(b"K3Y".to_vec()))],
        )
        .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode("user:pw");
        let text = format!("user:pw {b64} K3Y user%3Apw");
        let t = &p.secrets[0].token;
        assert_eq!(
            p.to_tokens.replace_str(&text),
            format!("{t} {t} [secret:search] {t}")
        );
        let q = Prepared::new(vec![secret("q", Auth::Token, &[], "a\"b/c")], vec![]).unwrap();
        assert_eq!(
            q.redactor.redact_str(r#"{"v":"a\"b/c"} a"b/c"#),
            r#"{"v":"[secret:q]"} [secret:q]"#
        );
        assert_eq!(
            p.redactor.redact_str(&text),
            "[secret:b] [secret:b] [secret:search] [secret:b]"
        );
        // Both filters know every spelling (`redact::spellings`), in any
        // ASCII case.
        let w = Prepared::new(vec![secret("w", Auth::Token, &[], "a/b&c<d")], vec![]).unwrap();
        let t = &w.secrets[0].token;
        for spelled in [
            r"a\/b&c<d",
            r"a/b\u0026c\u003Cd",
            "a%2fb%26c%3cd",
            "a/b&amp;c&lt;d",
            "612f6226633c64",
            "A/B&C<D",
        ] {
            assert_eq!(w.to_tokens.replace_str(spelled), *t, "{spelled}");
            assert_eq!(w.redactor.redact_str(spelled), "[secret:w]", "{spelled}");
        }
    }

    #[test]
    fn binding_compares_hosts_without_case_and_setup_checks_secrets() {
        let s = secret("c", Auth::Bearer, &["API.Example."], "v");
        assert!(s.bound_to("api.example"));
        assert!(!s.bound_to("api.example.evil"));
        assert!(secret("d", Auth::Token, &[], "v").bound_to("any.example"));
        let v6 = secret("e", Auth::Token, &["::1"], "v");
        assert!(v6.bound_to("[::1]"));
        for h in [
            "bad header",
            "Host",
            "proxy-authorization",
            "Transfer-Encoding",
            "Accept-Encoding",
            "range",
        ] {
            let bad_header = secret("f", Auth::Header(h.into()), &[], "v");
            assert!(Prepared::new(vec![bad_header], vec![]).is_err(), "{h}");
        }
        let ok = secret("f", Auth::Header("X-Api-Key".into()), &[], "v");
        assert!(Prepared::new(vec![ok], vec![]).is_ok());
        let bad_value = secret("g", Auth::Bearer, &[], "v\r\nx: y");
        let Err(e) = Prepared::new(vec![bad_value], vec![]) else {
            panic!("a value with a newline was accepted")
        };
        let e = e.to_string();
        assert!(e.contains("`g`") && !e.contains("x: y"), "{e}");
        let mut bad_token = secret("h", Auth::Token, &[], "v");
        bad_token.token = "plain".into();
        assert!(Prepared::new(vec![bad_token], vec![]).is_err());
    }
}
