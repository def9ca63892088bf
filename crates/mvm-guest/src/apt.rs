//! Finding and downloading Debian packages through the host's own apt
//! configuration (`apt-cache`, `apt-get download`), so mirrors, proxies and
//! signatures are whatever the host already trusts.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum AptError {
    #[error(
        "could not run `{command}`: {source}; mvm fetches its guest kernel with apt, so it needs a Debian-family host"
    )]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error(
        "apt knows no package `{0}`; run `apt-get update` (and check that Debian's main component is in the sources)"
    )]
    UnknownPackage(String),
    #[error("apt's record for `{package}` has no `{field}` field")]
    MissingField {
        package: String,
        field: &'static str,
    },
    #[error("the metapackage `{0}` does not depend on any linux-image package")]
    NoKernelDependency(String),
    #[error("`apt-get download` left {0} .deb files in its directory, expected exactly one")]
    UnexpectedDownload(usize),
    #[error("reading the downloaded package {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the downloaded {path} has sha256 {actual} but apt's index says {expected}; delete it and retry"
    )]
    ChecksumMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
}

/// One exact version of a binary package as apt's index describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebPackage {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub size_bytes: u64,
}

/// Resolves `metapackage` (e.g. `linux-image-cloud-amd64`) to the kernel
/// package its candidate version depends on.
pub fn resolve_kernel_package(metapackage: &str) -> Result<DebPackage, AptError> {
    let meta = show(metapackage)?;
    let depends = field(&meta, "Depends").ok_or_else(|| AptError::MissingField {
        package: metapackage.to_owned(),
        field: "Depends",
    })?;
    let target = kernel_dependency(depends)
        .ok_or_else(|| AptError::NoKernelDependency(metapackage.to_owned()))?;
    let stanza = show(&target)?;
    let required = |name: &'static str| {
        field(&stanza, name).ok_or_else(|| AptError::MissingField {
            package: target.clone(),
            field: name,
        })
    };
    Ok(DebPackage {
        name: required("Package")?.to_owned(),
        version: required("Version")?.to_owned(),
        sha256: required("SHA256")?.to_owned(),
        size_bytes: required("Size")?
            .parse()
            .map_err(|_| AptError::MissingField {
                package: target.clone(),
                field: "Size",
            })?,
    })
}

/// Downloads `package` into the empty directory `dir` and verifies it
/// against apt's recorded checksum; returns the path of the `.deb`.
pub fn download(package: &DebPackage, dir: &Path) -> Result<PathBuf, AptError> {
    let spec = format!("{}={}", package.name, package.version);
    run(Command::new("apt-get")
        .args(["download", "-q", &spec])
        .current_dir(dir))?;
    let debs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| AptError::Read {
            path: dir.to_owned(),
            source,
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "deb"))
        .collect();
    let [deb] = debs.as_slice() else {
        return Err(AptError::UnexpectedDownload(debs.len()));
    };
    verify_sha256(deb, &package.sha256)?;
    Ok(deb.clone())
}

/// Checks a file against an expected lowercase hex sha256.
pub fn verify_sha256(path: &Path, expected: &str) -> Result<(), AptError> {
    let actual = sha256_file(path)?;
    if actual != expected {
        return Err(AptError::ChecksumMismatch {
            path: path.to_owned(),
            expected: expected.to_owned(),
            actual,
        });
    }
    Ok(())
}

pub fn sha256_file(path: &Path) -> Result<String, AptError> {
    let read_error = |source| AptError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(read_error)?;
    Ok(crate::hex(&hasher.finalize()))
}

/// The candidate version's stanza of `apt-cache show`.
fn show(package: &str) -> Result<String, AptError> {
    match run(Command::new("apt-cache").args(["show", "--no-all-versions", package])) {
        Ok(out) if out.trim().is_empty() => Err(AptError::UnknownPackage(package.to_owned())),
        Err(AptError::Failed { stderr, .. }) if stderr.contains("No packages found") => {
            Err(AptError::UnknownPackage(package.to_owned()))
        }
        other => other,
    }
}

fn run(command: &mut Command) -> Result<String, AptError> {
    let display = format!("{command:?}").replace('"', "");
    let out = command.output().map_err(|source| AptError::Spawn {
        command: display.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(AptError::Failed {
            command: display,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The value of `name` in the first stanza of a deb822 record (single-line fields only).
fn field<'a>(record: &'a str, name: &str) -> Option<&'a str> {
    record
        .lines()
        .take_while(|line| !line.is_empty())
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key == name).then(|| value.trim())
        })
}

/// From a `Depends` value, the first `linux-image-*` package as `name` or
/// `name=version` when the metapackage pins an exact version.
fn kernel_dependency(depends: &str) -> Option<String> {
    depends.split(',').find_map(|clause| {
        let first = clause.split('|').next()?.trim();
        let (name, constraint) = match first.split_once('(') {
            Some((name, rest)) => (name.trim(), Some(rest.trim_end_matches(')').trim())),
            None => (first, None),
        };
        if !name.starts_with("linux-image-") {
            return None;
        }
        Some(match constraint.and_then(|c| c.strip_prefix('=')) {
            Some(version) => format!("{name}={}", version.trim()),
            None => name.to_owned(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_kernel_dependency_keeps_its_version() {
        assert_eq!(
            kernel_dependency("linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)").as_deref(),
            Some("linux-image-6.1.0-56-cloud-amd64=6.1.192-2")
        );
    }

    #[test]
    fn non_kernel_dependencies_are_skipped() {
        assert_eq!(
            kernel_dependency("kmod, linux-image-6.12.9-cloud-amd64 | foo").as_deref(),
            Some("linux-image-6.12.9-cloud-amd64")
        );
        assert_eq!(kernel_dependency("kmod, linux-base (>= 4.3~)"), None);
    }

    #[test]
    fn fields_come_from_the_first_stanza_only() {
        let record = "Package: a\nVersion: 1\nSHA256: abc\n\nPackage: b\nVersion: 2\n";
        assert_eq!(field(record, "Version"), Some("1"));
        assert_eq!(field(record, "SHA256"), Some("abc"));
        assert_eq!(field(record, "Depends"), None);
    }
}
