use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::record::{self, Record};
use crate::{SecretError, fsutil, is_secret_name, key};

/// The largest value `set` takes: API keys and tokens, not files.
pub const MAX_VALUE: usize = 64 << 10;

/// A secret file holds the value as base64 plus a little JSON.
const MAX_FILE: u64 = (MAX_VALUE as u64) * 2;

const DIR: &str = "secrets directory";
const FILE: &str = "secret file";

/// What `list` shows of a secret: never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub name: String,
    /// When the current value was set (UTC, whole seconds).
    pub created: OffsetDateTime,
    /// When it was last handed out through [`Store::touch_used`].
    pub last_used: Option<OffsetDateTime>,
}

/// The host secret store: `$MVM_HOME/secrets/<name>.secret`, each value
/// encrypted under a key kept outside the mvm home.
#[derive(Debug, Clone)]
pub struct Store {
    home: PathBuf,
    dir: PathBuf,
    key_file: PathBuf,
}

/// An exclusive flock on `secrets/.lock`, released on drop: writers of one
/// secret file never interleave a read-modify-write (touch vs set).
struct Lock(#[allow(dead_code)] File);

impl Store {
    /// The store under `home` with the key from [`key::default_key_file`].
    /// Nothing is created until the first `set`.
    pub fn open(home: &Path) -> Result<Store, SecretError> {
        Store::open_with_key_file(home, &key::default_key_file()?)
    }

    /// As [`Store::open`] with an explicit key file, which must lie
    /// outside `home`.
    pub fn open_with_key_file(home: &Path, key_file: &Path) -> Result<Store, SecretError> {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let (home_abs, key_abs) = (abs(home), abs(key_file));
        let inside = key_abs.starts_with(&home_abs)
            || match (
                home_abs.canonicalize(),
                key_abs.parent().and_then(|p| p.canonicalize().ok()),
            ) {
                (Ok(h), Some(k)) => k.starts_with(h),
                _ => false,
            };
        if inside {
            return Err(SecretError::KeyInsideHome {
                key: key_file.into(),
                home: home.into(),
            });
        }
        let store = Store {
            home: home.into(),
            dir: home.join("secrets"),
            key_file: key_abs,
        };
        fsutil::check_dir(&store.dir, DIR)?;
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.secret"))
    }

    fn lock(&self) -> Result<Lock, SecretError> {
        let path = self.dir.join(".lock");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| SecretError::io(&path, e))?;
        // SAFETY: flock on an fd we own; blocks until granted.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(SecretError::io(&path, std::io::Error::last_os_error()));
        }
        Ok(Lock(f))
    }

    fn ensure(&self) -> Result<(), SecretError> {
        fs::create_dir_all(&self.home).map_err(|e| SecretError::io(&self.home, e))?;
        fsutil::ensure_dir(&self.dir, DIR)
    }

    fn read(&self, name: &str) -> Result<Option<(PathBuf, Record)>, SecretError> {
        if !fsutil::check_dir(&self.dir, DIR)? {
            return Ok(None);
        }
        let path = self.path(name);
        let Some(bytes) = fsutil::read_private(&path, MAX_FILE, FILE)? else {
            return Ok(None);
        };
        let rec = Record::parse(&bytes, &path)?;
        Ok(Some((path, rec)))
    }

    fn write(&self, path: &Path, rec: &Record) -> Result<(), SecretError> {
        fsutil::write_private(&self.dir, path, &rec.to_bytes(), false)?;
        Ok(())
    }

    /// Store `value` as `name`, replacing any value there (`Ok(true)` when
    /// one was replaced). The store key is made on first use.
    pub fn set(&self, name: &str, value: &[u8]) -> Result<bool, SecretError> {
        check_name(name)?;
        if value.is_empty() {
            return Err(SecretError::Empty { name: name.into() });
        }
        if value.len() > MAX_VALUE {
            return Err(SecretError::TooLarge {
                name: name.into(),
                len: value.len(),
                max: MAX_VALUE,
            });
        }
        self.ensure()?;
        // A new key is made only for an empty store: one made beside
        // secrets sealed with a lost key would split the store silently.
        if key::load(&self.key_file)?.is_none() {
            let count = self.list()?.len();
            if count > 0 {
                return Err(SecretError::KeyLost {
                    key: self.key_file.clone(),
                    dir: self.dir.clone(),
                    count,
                });
            }
        }
        let key = key::load_or_create(&self.key_file)?;
        let rec = Record::seal(name, value, &key)?;
        let _lock = self.lock()?;
        let path = self.path(name);
        let existed = fs::symlink_metadata(&path).is_ok();
        self.write(&path, &rec)?;
        Ok(existed)
    }

    /// The value of `name`, `None` when there is no such secret.
    pub fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, SecretError> {
        check_name(name)?;
        let Some((path, rec)) = self.read(name)? else {
            return Ok(None);
        };
        let Some(key) = key::load(&self.key_file)? else {
            return Err(SecretError::KeyMissing {
                name: name.into(),
                key: self.key_file.clone(),
            });
        };
        let value = rec.open(name, &key, &path, &self.key_file)?;
        if rec.name != name {
            return Err(SecretError::Damaged {
                path,
                detail: format!("its name field says {:?}", rec.name),
            });
        }
        Ok(Some(value))
    }

    /// Whether `name` is stored (no decryption, no key needed).
    pub fn contains(&self, name: &str) -> Result<bool, SecretError> {
        check_name(name)?;
        Ok(self.read(name)?.is_some())
    }

    /// Every stored secret's name and times, sorted by name; never values.
    pub fn list(&self) -> Result<Vec<Meta>, SecretError> {
        if !fsutil::check_dir(&self.dir, DIR)? {
            return Ok(Vec::new());
        }
        let rd = fs::read_dir(&self.dir).map_err(|e| SecretError::io(&self.dir, e))?;
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| SecretError::io(&self.dir, e))?;
            let file = entry.file_name();
            // Staging files and the lock start with '.', which no name does.
            let Some(name) = file.to_str().and_then(|n| n.strip_suffix(".secret")) else {
                continue;
            };
            if !is_secret_name(name) {
                continue;
            }
            if let Some((_, rec)) = self.read(name)? {
                out.push(Meta {
                    name: name.into(),
                    created: rec.created,
                    last_used: rec.last_used,
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Delete `name`; `NotFound` when it is not there.
    pub fn remove(&self, name: &str) -> Result<(), SecretError> {
        check_name(name)?;
        let path = self.path(name);
        let missing = || SecretError::NotFound {
            name: name.into(),
            path: path.clone(),
        };
        if !fsutil::check_dir(&self.dir, DIR)? {
            return Err(missing());
        }
        let _lock = self.lock()?;
        match fs::remove_file(&path) {
            Ok(()) => fsutil::sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(missing()),
            Err(e) => Err(SecretError::io(&path, e)),
        }
    }

    /// Record that `name` was just used (released to a request).
    pub fn touch_used(&self, name: &str) -> Result<(), SecretError> {
        check_name(name)?;
        let missing = || SecretError::NotFound {
            name: name.into(),
            path: self.path(name),
        };
        if !fsutil::check_dir(&self.dir, DIR)? {
            return Err(missing());
        }
        let _lock = self.lock()?;
        let Some((path, mut rec)) = self.read(name)? else {
            return Err(missing());
        };
        rec.last_used = Some(record::now());
        self.write(&path, &rec)
    }
}

fn check_name(name: &str) -> Result<(), SecretError> {
    if is_secret_name(name) {
        Ok(())
    } else {
        Err(SecretError::InvalidName { name: name.into() })
    }
}
