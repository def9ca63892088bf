use std::path::PathBuf;

/// Every error names the secret or file at fault and says what to do.
/// None holds a secret value: only names, paths and sizes.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "invalid secret name {name:?}\n  hint: a secret name is 1-128 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit (the IR's rule: ^[a-z0-9][a-z0-9._-]{{0,127}}$)"
    )]
    InvalidName { name: String },
    #[error("the value for secret {name:?} is empty\n  hint: a secret needs at least one byte")]
    Empty { name: String },
    #[error(
        "the value for secret {name:?} is {len} bytes; the limit is {max} bytes\n  hint: store a token or key, not a file of data"
    )]
    TooLarge {
        name: String,
        len: usize,
        max: usize,
    },
    #[error("no secret {name:?}: {} does not exist\n  hint: `mvmctl secret list` shows the stored names; `mvmctl secret set {name}` stores one", path.display())]
    NotFound { name: String, path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is a symlink; the secret store never follows one\n  hint: remove the link; mvm makes the real {what} itself", path.display())]
    Symlink { path: PathBuf, what: &'static str },
    #[error("{} is not a {what}\n  hint: move it away; mvm makes the {what} itself", path.display())]
    NotRegular { path: PathBuf, what: &'static str },
    #[error("{} belongs to uid {owner}, not to this user (uid {me})\n  hint: the secret store must be owned by the user running mvmctl; chown it or use another MVM_HOME", path.display())]
    NotOwned { path: PathBuf, owner: u32, me: u32 },
    #[error("{} has mode {mode:04o}: group or other can reach it\n  hint: chmod {want:o} {}", path.display(), path.display())]
    Permissions { path: PathBuf, mode: u32, want: u32 },
    #[error("{}: not a secret file of this store ({detail})\n  hint: the file is damaged; `mvmctl secret rm NAME` and set it again", path.display())]
    Damaged { path: PathBuf, detail: String },
    #[error(
        "cannot decrypt secret {name:?} ({}) with the store key {}: the key is not the one it was stored with, or the file was altered or copied from another name\n  hint: restore the original key file, or `mvmctl secret set {name}` again", path.display(), key.display()
    )]
    Decrypt {
        name: String,
        path: PathBuf,
        key: PathBuf,
    },
    #[error(
        "the store key {} does not exist, so secret {name:?} cannot be decrypted\n  hint: restore the key file (or point MVM_SECRETS_KEY_FILE at it); without it, set the secret again", key.display()
    )]
    KeyMissing { name: String, key: PathBuf },
    #[error(
        "the store key {} does not exist, but {} holds {count} secret(s) encrypted with a key: a new key would leave them unreadable\n  hint: restore the key file (or point MVM_SECRETS_KEY_FILE at it); if it is lost, `mvmctl secret rm` each listed secret first", key.display(), dir.display()
    )]
    KeyLost {
        key: PathBuf,
        dir: PathBuf,
        count: usize,
    },
    #[error("{}: not a store key ({detail})\n  hint: a store key file is one line of 64 hex digits written by mvm", path.display())]
    BadKey { path: PathBuf, detail: String },
    #[error(
        "the store key {} is inside the mvm home {}: a copy of the home would carry the key with the secrets\n  hint: point MVM_SECRETS_KEY_FILE outside the mvm home, or unset it for ~/.config/mvm/secrets.key", key.display(), home.display()
    )]
    KeyInsideHome { key: PathBuf, home: PathBuf },
    #[error(
        "no place for the store key: none of MVM_SECRETS_KEY_FILE, XDG_CONFIG_HOME or HOME is set\n  hint: set MVM_SECRETS_KEY_FILE to a path outside the mvm home"
    )]
    NoKeyPath,
}

impl SecretError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SecretError::Io {
            path: path.into(),
            source,
        }
    }
}
