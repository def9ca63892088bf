//! The store key: 32 random bytes kept outside the mvm home, as one line
//! of 64 hex digits in an owner-only file.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::SecretError;
use crate::fsutil;

pub(crate) type KeyBytes = Zeroizing<[u8; 32]>;

const WHAT: &str = "store key file";

/// `$MVM_SECRETS_KEY_FILE`, else `$XDG_CONFIG_HOME/mvm/secrets.key`, else
/// `$HOME/.config/mvm/secrets.key`.
pub fn default_key_file() -> Result<PathBuf, SecretError> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = var("MVM_SECRETS_KEY_FILE") {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = var("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(p).join("mvm/secrets.key"));
    }
    if let Some(p) = var("HOME") {
        return Ok(PathBuf::from(p).join(".config/mvm/secrets.key"));
    }
    Err(SecretError::NoKeyPath)
}

/// The key at `path`, `None` when there is no file.
pub(crate) fn load(path: &Path) -> Result<Option<KeyBytes>, SecretError> {
    let Some(text) = fsutil::read_private(path, 256, WHAT)? else {
        return Ok(None);
    };
    let text = Zeroizing::new(text);
    let bad = |detail: &str| SecretError::BadKey {
        path: path.into(),
        detail: detail.into(),
    };
    let hex = text.strip_suffix(b"\n").unwrap_or(&text);
    if hex.len() != 64 {
        return Err(bad("expected 64 hex digits"));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    for (i, pair) in hex.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        match (digit(pair[0]), digit(pair[1])) {
            (Some(h), Some(l)) => key[i] = (h * 16 + l) as u8,
            _ => return Err(bad("not hex digits")),
        }
    }
    Ok(Some(key))
}

/// The key at `path`, made (0600, its directory 0700 if new) on first use.
pub(crate) fn load_or_create(path: &Path) -> Result<KeyBytes, SecretError> {
    if let Some(k) = load(path)? {
        return Ok(k);
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&parent)
        .map_err(|e| SecretError::io(&parent, e))?;
    let key: KeyBytes = Zeroizing::new(fsutil::random_bytes()?);
    let mut text = Zeroizing::new(String::with_capacity(65));
    for b in key.iter() {
        text.push_str(&format!("{b:02x}"));
    }
    text.push('\n');
    // Exclusive: two first uses at once must not make two keys.
    if fsutil::write_private(&parent, path, text.as_bytes(), true)? {
        return Ok(key);
    }
    load(path)?.ok_or_else(|| SecretError::BadKey {
        path: path.into(),
        detail: "vanished while being made".into(),
    })
}
