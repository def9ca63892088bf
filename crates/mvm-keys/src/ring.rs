use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};

use crate::{KeyError, PublicKey, Signer};

/// The host's own key for signing the audit log; reserved (`mvm-`).
pub const AUDIT_KEY: &str = "mvm-audit";

/// A PEM key is ~120 bytes; anything far bigger is not one of ours.
const MAX_KEY_FILE: u64 = 64 << 10;

/// The key directory, `$MVM_HOME/keys`.
#[derive(Debug, Clone)]
pub struct KeyRing {
    dir: PathBuf,
}

fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

impl KeyRing {
    /// Creates `dir` (0700) if needed and tightens it to 0700 if not.
    pub fn new(dir: &Path) -> Result<Self, KeyError> {
        fs::create_dir_all(dir).map_err(|e| KeyError::io(dir, e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| KeyError::io(dir, e))?;
        Ok(KeyRing {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn key_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    fn pub_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pub"))
    }

    /// Make a new key pair. Refuses reserved (`mvm-`) and existing names.
    pub fn generate(&self, name: &str) -> Result<PublicKey, KeyError> {
        if !valid_name(name) || name.starts_with("mvm-") {
            return Err(KeyError::InvalidName { name: name.into() });
        }
        self.create(name)
    }

    fn create(&self, name: &str) -> Result<PublicKey, KeyError> {
        for p in [self.key_path(name), self.pub_path(name)] {
            if fs::symlink_metadata(&p).is_ok() {
                return Err(KeyError::Exists {
                    name: name.into(),
                    path: p,
                });
            }
        }
        let key = SigningKey::generate(&mut rand_core::OsRng);
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::BadKeyFile {
                path: self.key_path(name),
                detail: e.to_string(),
            })?;
        let public = PublicKey::new(key.verifying_key(), Some(name.to_string()));
        // The private half first: a .pub without a .key is harmless, the
        // reverse would leave a key nobody can name.
        self.install(name, &self.key_path(name), pem.as_bytes())?;
        self.install(
            name,
            &self.pub_path(name),
            format!("{}\n", public.to_text()).as_bytes(),
        )?;
        Ok(public)
    }

    /// Stage in the same directory (0600 whatever the umask), then
    /// hard-link into place: unlike rename, link refuses an existing name,
    /// so two racing `generate`s cannot overwrite each other.
    fn install(&self, name: &str, dest: &Path, bytes: &[u8]) -> Result<(), KeyError> {
        let file_name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("key");
        // Unique per call, not per process: threads of one process (a
        // runtime starting instances in parallel) stage at the same time.
        let stage = self
            .dir
            .join(format!(".{file_name}.{}.tmp", random_suffix()));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&stage)?;
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
            f.write_all(bytes)?;
            f.sync_all()?;
            Ok::<_, std::io::Error>(())
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&stage);
            return Err(KeyError::io(&stage, e));
        }
        let linked = fs::hard_link(&stage, dest);
        let _ = fs::remove_file(&stage);
        match linked {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(KeyError::Exists {
                name: name.into(),
                path: dest.to_path_buf(),
            }),
            Err(e) => Err(KeyError::io(dest, e)),
        }
    }

    /// All keys with a readable `.pub`, sorted by name. Unparsable files
    /// are skipped: listing is for people, loading reports the error.
    pub fn list(&self) -> Result<Vec<(String, PublicKey)>, KeyError> {
        let mut out = Vec::new();
        let rd = fs::read_dir(&self.dir).map_err(|e| KeyError::io(&self.dir, e))?;
        for entry in rd.flatten() {
            let file = entry.file_name();
            let Some(name) = file.to_str().and_then(|n| n.strip_suffix(".pub")) else {
                continue;
            };
            if !valid_name(name) {
                continue;
            }
            if let Ok(p) = self.public(name) {
                out.push((name.to_string(), p));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub fn public(&self, name: &str) -> Result<PublicKey, KeyError> {
        if !valid_name(name) {
            return Err(KeyError::InvalidName { name: name.into() });
        }
        let path = self.pub_path(name);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyError::NotFound {
                    name: name.into(),
                    path,
                });
            }
            Err(e) => return Err(KeyError::io(&path, e)),
        };
        PublicKey::parse_at(&text, &path.display().to_string())
    }

    /// Load a private key, refusing links, non-files and loose modes.
    pub fn signer(&self, name: &str) -> Result<Signer, KeyError> {
        if !valid_name(name) {
            return Err(KeyError::InvalidName { name: name.into() });
        }
        let path = self.key_path(name);
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyError::NotFound {
                    name: name.into(),
                    path,
                });
            }
            Err(e) => return Err(KeyError::io(&path, e)),
        };
        if meta.file_type().is_symlink() {
            return Err(KeyError::Symlink { path });
        }
        // O_NOFOLLOW and fstat on the open file: the checks above are for
        // the message, these close the swap-after-check race.
        let mut f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    KeyError::Symlink { path: path.clone() }
                } else {
                    KeyError::io(&path, e)
                }
            })?;
        let meta = f.metadata().map_err(|e| KeyError::io(&path, e))?;
        if !meta.file_type().is_file() {
            return Err(KeyError::NotRegular { path });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions { path, mode });
        }
        let pem = read_capped(&mut f, &path)?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| KeyError::BadKeyFile {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        Ok(Signer::new(name.to_string(), key))
    }

    /// The reserved host audit key: loaded, or made on first use.
    pub fn host_audit_key(&self) -> Result<Signer, KeyError> {
        match self.signer(AUDIT_KEY) {
            Err(KeyError::NotFound { .. }) => match self.create(AUDIT_KEY) {
                // Another process made it between our look and our link.
                Ok(_) | Err(KeyError::Exists { .. }) => self.signer(AUDIT_KEY),
                Err(e) => Err(e),
            },
            other => other,
        }
    }
}

fn read_capped(f: &mut File, path: &Path) -> Result<String, KeyError> {
    let mut buf = Vec::new();
    f.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| KeyError::io(path, e))?;
    if buf.len() as u64 > MAX_KEY_FILE {
        return Err(KeyError::BadKeyFile {
            path: path.to_path_buf(),
            detail: "file is too big to be a key".into(),
        });
    }
    String::from_utf8(buf).map_err(|_| KeyError::BadKeyFile {
        path: path.to_path_buf(),
        detail: "not UTF-8 text".into(),
    })
}

/// 64 random bits, hex: a staging name no other writer picks.
fn random_suffix() -> String {
    use rand_core::RngCore;
    let n = rand_core::OsRng.next_u64();
    format!("{}-{n:016x}", std::process::id())
}
