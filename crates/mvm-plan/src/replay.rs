use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::PlanError;

/// Why a launch is not admitted: a stable code, the check, and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub check: String,
    pub detail: String,
    pub hint: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}\n  hint: {}",
            self.code, self.check, self.detail, self.hint
        )
    }
}

/// One file per used nonce, named by its sha256 so any nonce is a safe name.
pub struct ReplayStore {
    dir: PathBuf,
}

impl ReplayStore {
    pub fn new(dir: &Path) -> Result<Self, PlanError> {
        fs::create_dir_all(dir).map_err(|e| PlanError::io(dir, e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| PlanError::io(dir, e))?;
        Ok(ReplayStore {
            dir: dir.to_path_buf(),
        })
    }

    /// O_EXCL create: atomic across processes, so a nonce admits once.
    pub fn consume(&self, nonce: &str, plan_sha256: &str) -> Result<(), Refusal> {
        let name = hex(&Sha256::digest(nonce.as_bytes()));
        let path = self.dir.join(name);
        let refuse = |detail: String| Refusal {
            code: "A_NONCE_REUSED",
            check: "nonce".into(),
            detail,
            hint: "sign a new plan with a fresh nonce".into(),
        };
        let mut f = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(refuse(format!("nonce {nonce:?} was already used")));
            }
            // Fail closed: a nonce we cannot record is not admitted.
            Err(e) => {
                return Err(refuse(format!(
                    "cannot record nonce in {}: {e}",
                    path.display()
                )));
            }
        };
        let _ = f.write_all(format!("{plan_sha256}\n").as_bytes());
        Ok(())
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn nonce_reuse_refused() {
        let t = tempfile::tempdir().unwrap();
        let s = super::ReplayStore::new(t.path()).unwrap();
        s.consume("n1", "aa").unwrap();
        assert_eq!(s.consume("n1", "aa").unwrap_err().code, "A_NONCE_REUSED");
        s.consume("n2", "aa").unwrap();
    }
}
