//! `mvmctl cp`: copy files into and out of a running instance, streamed.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use mvm_runtime::InstanceName;
use mvm_runtime::call;

/// Copy a file into or out of a running instance, streamed (any size).
///
/// One side is NAME:/absolute/guest/path, the other a local path:
/// `mvmctl cp ./data.csv NAME:/app/data.csv`, `mvmctl cp NAME:/app/out.json .`
/// (a local directory keeps the file's name). `-` is stdin or stdout.
/// An upload replaces the guest file atomically; a download is written
/// beside its target and renamed over it.
#[derive(Debug, clap::Args)]
pub struct CpArgs {
    pub source: String,
    pub destination: String,
    /// Permission bits (octal) of a file copied into the guest.
    #[arg(long, value_name = "OCTAL", default_value = "644")]
    pub mode: String,
}

/// `NAME:/path` → (name, path); a local path (no `:` before the first `/`,
/// or a leading `./` or `/`) → None.
fn remote(arg: &str) -> anyhow::Result<Option<(InstanceName, String)>> {
    if arg.starts_with('/') || arg.starts_with('.') || arg == "-" {
        return Ok(None);
    }
    let Some((name, path)) = arg.split_once(':') else {
        return Ok(None);
    };
    if name.contains('/') {
        return Ok(None);
    }
    if !path.starts_with('/') {
        anyhow::bail!("{arg}: the guest path must be absolute (NAME:/app/file)");
    }
    Ok(Some((InstanceName::parse(name)?, path.to_string())))
}

pub fn run(args: CpArgs) -> anyhow::Result<i32> {
    let home = mvm_runtime::home::mvm_home();
    let mode = u32::from_str_radix(&args.mode, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| {
            anyhow::anyhow!("--mode must be octal permission bits, got {}", args.mode)
        })?;
    match (remote(&args.source)?, remote(&args.destination)?) {
        (Some(_), Some(_)) => anyhow::bail!("both sides are instances; copy through a local file"),
        (None, None) => anyhow::bail!("neither side is an instance; one must be NAME:/guest/path"),
        (None, Some((name, mut path))) => {
            let mut src: Box<dyn Read> = if args.source == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                let f = File::open(&args.source)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", args.source))?;
                if f.metadata()?.is_dir() {
                    anyhow::bail!("{} is a directory; cp copies one file", args.source);
                }
                Box::new(f)
            };
            if path.ends_with('/') {
                let file = Path::new(&args.source)
                    .file_name()
                    .ok_or_else(|| anyhow::anyhow!("name the guest file: NAME:/dir/file"))?;
                path.push_str(&file.to_string_lossy());
            }
            let n = call::upload(&home, &name, &path, mode, &mut src)?;
            eprintln!("{name}:{path}: {n} bytes");
        }
        (Some((name, path)), None) => {
            if args.destination == "-" {
                let mut out = std::io::stdout().lock();
                call::download(&home, &name, &path, &mut out)?;
                out.flush()?;
                return Ok(0);
            }
            let mut target = PathBuf::from(&args.destination);
            if target.is_dir() {
                let file = Path::new(&path)
                    .file_name()
                    .ok_or_else(|| anyhow::anyhow!("{path} names no file"))?;
                target.push(file);
            }
            // Written beside the target and renamed: a failed copy leaves
            // whatever was there before.
            let dir = target
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let mut staged = tempfile::NamedTempFile::new_in(dir)?;
            let mut w = std::io::BufWriter::new(staged.as_file_mut());
            let n = call::download(&home, &name, &path, &mut w)?;
            // Flushed here, so a failed last write is an error, not lost.
            w.into_inner()
                .map_err(|e| anyhow::anyhow!("{}: {}", target.display(), e.error()))?;
            staged.as_file().sync_all()?;
            staged
                .persist(&target)
                .map_err(|e| anyhow::anyhow!("{}: {}", target.display(), e.error))?;
            eprintln!("{}: {n} bytes", target.display());
        }
    }
    Ok(0)
}
