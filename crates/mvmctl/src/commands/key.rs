//! `mvmctl key`: Ed25519 signing keys under `$MVM_HOME/keys` (mvm-keys).
//! Only public halves are ever printed.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use mvm_keys::{KeyError, KeyRing};

#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Make a new key pair: prints the public key; the private key stays in
    /// its 0600 file and is never printed.
    Generate {
        /// 1-63 of a-z, 0-9 and '-', starting with a letter; not 'mvm-...'.
        name: String,
    },
    /// List keys: name, key id and public key.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a key's public half, one line (`ed25519 <base64> <name>`), for
    /// a policy's trusted_keys or another host: `mvmctl key export NAME > NAME.pub`.
    Export {
        /// The key to export; `mvm-audit` is the host audit key.
        name: String,
    },
}

pub fn run(cmd: KeyCommand) -> anyhow::Result<i32> {
    let dir = keys_dir();
    match cmd {
        KeyCommand::Generate { name } => generate(&dir, &name),
        KeyCommand::List { json } => list(&dir, json),
        KeyCommand::Export { name } => export(&dir, &name),
    }
}

fn keys_dir() -> PathBuf {
    mvm_runtime::home::mvm_home().join("keys")
}

fn shown(name: &str) -> String {
    mvm_ir::text::escape_control(name).into_owned()
}

fn generate(dir: &Path, name: &str) -> anyhow::Result<i32> {
    // mvm-keys refuses these too; this says why in words of its own.
    if name.starts_with("mvm-") {
        anyhow::bail!(
            "key name {:?} is reserved: names starting 'mvm-' are keys mvm makes itself (mvm-audit is the host audit key)\n  hint: pick a name without the 'mvm-' prefix",
            shown(name)
        );
    }
    let ring = KeyRing::new(dir)?;
    let public = ring.generate(name)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", public.to_text())?;
    out.flush()?;
    // Stdout is the public line alone, so `generate NAME > NAME.pub` works too.
    eprintln!(
        "created key {name} (id {})\n  private key: {} (mode 0600; never printed, keep it on this host)\n  public key:  {}",
        public.key_id(),
        dir.join(format!("{name}.key")).display(),
        dir.join(format!("{name}.pub")).display(),
    );
    Ok(0)
}

#[derive(serde::Serialize)]
struct Row {
    name: String,
    key_id: String,
    public: String,
    has_private_key: bool,
}

fn list(dir: &Path, json: bool) -> anyhow::Result<i32> {
    // Listing must not create the keys directory as a side effect.
    let keys = if dir.is_dir() {
        KeyRing::new(dir)?.list()?
    } else {
        Vec::new()
    };
    let mut rows = Vec::new();
    for (name, public) in keys {
        let key_file = dir.join(format!("{name}.key"));
        let meta = std::fs::symlink_metadata(&key_file).ok();
        // Loading would refuse a loose key file; say so now rather than at signing time.
        if let Some(m) = &meta
            && m.file_type().is_file()
            && m.mode() & 0o077 != 0
        {
            let e = KeyError::Permissions {
                path: key_file.clone(),
                mode: m.mode() & 0o7777,
            };
            eprintln!("warning: {e}");
        }
        rows.push(Row {
            key_id: public.key_id(),
            public: shown(&public.to_text()),
            has_private_key: meta.is_some(),
            name,
        });
    }
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(0);
    }
    if rows.is_empty() {
        eprintln!(
            "no keys in {}\n  hint: `mvmctl key generate NAME` makes one",
            dir.display()
        );
        return Ok(0);
    }
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(4);
    writeln!(out, "{:<w$}  {:<16}  PUBLIC KEY", "NAME", "KEY ID")?;
    for r in &rows {
        writeln!(out, "{:<w$}  {:<16}  {}", r.name, r.key_id, r.public)?;
    }
    Ok(0)
}

fn export(dir: &Path, name: &str) -> anyhow::Result<i32> {
    let found = if dir.is_dir() {
        KeyRing::new(dir)?.public(name)
    } else {
        Err(KeyError::NotFound {
            name: name.into(),
            path: dir.join(format!("{name}.pub")),
        })
    };
    let public = match found {
        Err(KeyError::NotFound { path, .. }) => anyhow::bail!(
            "no key {:?}: {} does not exist\n  hint: `mvmctl key list` shows the keys there; `mvmctl key generate {}` makes one",
            shown(name),
            path.display(),
            shown(name)
        ),
        other => other?,
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", shown(&public.to_text()))?;
    out.flush()?;
    Ok(0)
}
