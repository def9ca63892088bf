//! `policy.toml`: the operator's word on what may run on this host.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use mvm_keys::PublicKey;

use crate::PlanError;

/// The policy file's name in the mvm home.
pub const FILE_NAME: &str = "policy.toml";

const MAX_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Where it came from, for messages; `None` for the built-in default.
    pub source: Option<PathBuf>,
    pub require_signed: bool,
    pub trusted_keys: Vec<PublicKey>,
    pub limits: Limits,
    pub audit: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_cpus: Option<u32>,
    pub max_memory_mib: Option<u32>,
    /// Network modes a launch may use (`none`, `bridge`, `host`).
    pub network_modes: Vec<mvm_launch::NetworkMode>,
    /// Whether an egress grant may name a loopback/private/link-local/
    /// metadata literal.
    pub allow_private_egress: bool,
    /// When set, the only secret names a launch may reference.
    pub secrets: Option<Vec<String>>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            source: None,
            require_signed: false,
            trusted_keys: Vec::new(),
            limits: Limits::default(),
            audit: true,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        use mvm_launch::NetworkMode;
        Limits {
            max_cpus: None,
            max_memory_mib: None,
            network_modes: vec![NetworkMode::None, NetworkMode::Bridge],
            allow_private_egress: false,
            secrets: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    require_signed: bool,
    #[serde(default)]
    trusted_keys: Vec<Spanned<String>>,
    #[serde(default)]
    limits: Option<RawLimits>,
    #[serde(default)]
    audit: Option<RawAudit>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_cpus: Option<u32>,
    max_memory_mib: Option<u32>,
    network_modes: Option<Vec<mvm_launch::NetworkMode>>,
    #[serde(default)]
    allow_private_egress: bool,
    secrets: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    enabled: bool,
}

impl Policy {
    /// `$MVM_HOME/policy.toml` if it exists, else the default policy.
    pub fn load_or_default(home: &Path) -> Result<Policy, PlanError> {
        let path = home.join(FILE_NAME);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Policy::default()),
            _ => Policy::load(&path),
        }
    }

    /// Reads a policy file. It decides what is trusted, so a file others
    /// could have written is refused like a key file would be.
    pub fn load(path: &Path) -> Result<Policy, PlanError> {
        let (file, bytes) = crate::file::read_regular(path, MAX_BYTES)?;
        let meta = file.metadata().map_err(|e| PlanError::io(path, e))?;
        // SAFETY: geteuid cannot fail and touches no memory.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me && meta.uid() != 0 {
            return Err(PlanError::File {
                path: path.to_path_buf(),
                detail: format!(
                    "belongs to uid {}, not to you (uid {me}) or root; whoever owns it decides what runs",
                    meta.uid()
                ),
                hint: format!("chown {me} {}", path.display()),
            });
        }
        if meta.mode() & 0o022 != 0 {
            return Err(PlanError::File {
                path: path.to_path_buf(),
                detail: format!(
                    "is writable by group or others (mode {:o}); whoever can write it decides what runs",
                    meta.mode() & 0o777
                ),
                hint: format!("chmod go-w {}", path.display()),
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| PlanError::File {
            path: path.to_path_buf(),
            detail: "is not UTF-8".into(),
            hint: "a policy is a TOML text file".into(),
        })?;
        Policy::parse(path, &text)
    }

    /// Parses policy text; errors name `path:line:column`.
    pub fn parse(path: &Path, text: &str) -> Result<Policy, PlanError> {
        let at = |span: Option<std::ops::Range<usize>>, message: String, hint: &str| {
            let (line, column) = line_col(text, span.map_or(0, |s| s.start));
            PlanError::Policy {
                file: path.to_path_buf(),
                line,
                column,
                message,
                hint: hint.into(),
            }
        };
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            at(
                e.span(),
                e.message().to_string(),
                "see docs/plans-and-audit.md for the fields a policy has",
            )
        })?;
        let mut trusted_keys = Vec::new();
        for k in &raw.trusted_keys {
            let key = PublicKey::parse(k.get_ref()).map_err(|e| {
                at(
                    Some(k.span()),
                    format!("trusted_keys: {e}"),
                    "paste the line `mvmctl key export NAME` prints",
                )
            })?;
            trusted_keys.push(key);
        }
        let limits = match raw.limits {
            None => Limits::default(),
            Some(l) => Limits {
                max_cpus: l.max_cpus,
                max_memory_mib: l.max_memory_mib,
                network_modes: l
                    .network_modes
                    .unwrap_or_else(|| Limits::default().network_modes),
                allow_private_egress: l.allow_private_egress,
                secrets: l.secrets,
            },
        };
        Ok(Policy {
            source: Some(path.to_path_buf()),
            require_signed: raw.require_signed,
            trusted_keys,
            limits,
            audit: raw.audit.is_none_or(|a| a.enabled),
        })
    }

    /// "policy.toml at PATH" or "the default policy", for messages.
    pub fn describe(&self) -> String {
        match &self.source {
            Some(p) => format!("the policy in {}", p.display()),
            None => "the default policy (no policy.toml)".into(),
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_the_default_policy() {
        let t = tempfile::tempdir().unwrap();
        let p = Policy::load_or_default(t.path()).unwrap();
        assert_eq!(p, Policy::default());
        assert!(!p.require_signed && p.audit);
    }

    #[test]
    fn reads_every_field() {
        let t = tempfile::tempdir().unwrap();
        let ring = mvm_keys::KeyRing::new(&t.path().join("keys")).unwrap();
        let alice = ring.generate("alice").unwrap();
        let text = format!(
            "require_signed = true\ntrusted_keys = [\"{}\"]\n[limits]\nmax_cpus = 2\nmax_memory_mib = 512\nnetwork_modes = [\"none\"]\nsecrets = [\"api-key\"]\n[audit]\nenabled = false\n",
            alice.to_text()
        );
        let path = t.path().join(FILE_NAME);
        std::fs::write(&path, text).unwrap();
        let p = Policy::load_or_default(t.path()).unwrap();
        assert!(p.require_signed && !p.audit);
        assert_eq!(p.trusted_keys[0].key_id(), alice.key_id());
        assert_eq!(p.limits.max_cpus, Some(2));
        assert_eq!(p.limits.network_modes, [mvm_launch::NetworkMode::None]);
        assert_eq!(
            p.limits.secrets.as_deref(),
            Some(&["api-key".to_string()][..])
        );
    }

    #[test]
    fn errors_name_line_and_column() {
        let p = Path::new("/etc/mvm/policy.toml");
        let err = Policy::parse(p, "require_signed = true\nrequire_sined = 1\n").unwrap_err();
        assert!(
            err.to_string().starts_with("/etc/mvm/policy.toml:2:1:"),
            "{err}"
        );
        let err = Policy::parse(p, "trusted_keys = [\n  \"ed25519 nope x\",\n]\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/etc/mvm/policy.toml:2:3: trusted_keys"),
            "{err}"
        );
        let err = Policy::parse(p, "[limits]\nnetwork_modes = [\"wide\"]\n").unwrap_err();
        assert!(err.to_string().contains(":2:"), "{err}");
    }

    #[test]
    fn a_policy_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join(FILE_NAME);
        std::fs::write(&path, "require_signed = false\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = Policy::load(&path).unwrap_err().to_string();
        assert!(err.contains("writable by group or others"), "{err}");
    }

    #[test]
    fn a_policy_someone_else_owns_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join(FILE_NAME);
        std::fs::write(&path, "require_signed = false\n").unwrap();
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return; // only root can give a file away; CI runs as root
        }
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let err = Policy::load(&path).unwrap_err().to_string();
        assert!(err.contains("belongs to uid 65534"), "{err}");
    }
}
