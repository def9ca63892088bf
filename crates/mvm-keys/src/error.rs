use std::path::PathBuf;

/// Every error names the file or key at fault and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "invalid key name {name:?}\n  hint: a name is 1-63 of a-z, 0-9 and '-', starting with a letter; names starting 'mvm-' are reserved"
    )]
    InvalidName { name: String },
    #[error("key {name:?} already exists at {}\n  hint: pick another name, or delete both files of the old key first", path.display())]
    Exists { name: String, path: PathBuf },
    #[error("no key {name:?}: {} does not exist\n  hint: `mvmctl key generate {name}` makes one", path.display())]
    NotFound { name: String, path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is a symlink; a key file must be a regular file\n  hint: replace the link with the file itself", path.display())]
    Symlink { path: PathBuf },
    #[error("{} is not a regular file\n  hint: a key file is a plain file written by `mvmctl key generate`", path.display())]
    NotRegular { path: PathBuf },
    #[error("{} has mode {mode:04o}: a private key must not be readable by group or other\n  hint: chmod 600 {}", path.display(), path.display())]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{}: not a usable Ed25519 PKCS#8 PEM private key ({detail})\n  hint: the file is damaged; make a new key", path.display())]
    BadKeyFile { path: PathBuf, detail: String },
    #[error(
        "{where_}: bad public key: {detail}\n  hint: the form is one line `ed25519 <base64 of 32 bytes> <comment>`"
    )]
    BadPublic { where_: String, detail: String },
}

impl KeyError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        KeyError::Io {
            path: path.into(),
            source,
        }
    }
}
