//! Which QEMU is installed, for `mvmctl doctor`.

use std::path::Path;
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error(
        "could not run {binary} (is QEMU installed? on Debian: apt-get install qemu-system-x86): {source}"
    )]
    Spawn {
        binary: String,
        source: std::io::Error,
    },
    #[error("`{binary} --version` printed no version: {output:?}")]
    Unrecognised { binary: String, output: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuVersion {
    pub major: u32,
    pub minor: u32,
    pub micro: u32,
    /// The whole first line, e.g. `QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)`.
    pub banner: String,
}

pub fn detect(binary: &Path) -> Result<QemuVersion, VersionError> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .map_err(|source| VersionError::Spawn {
            binary: binary.display().to_string(),
            source,
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse(&text).ok_or_else(|| VersionError::Unrecognised {
        binary: binary.display().to_string(),
        output: text.into_owned(),
    })
}

fn parse(text: &str) -> Option<QemuVersion> {
    let banner = text.lines().next()?.trim();
    let number = banner
        .strip_prefix("QEMU emulator version ")?
        .split_whitespace()
        .next()?;
    let mut parts = number.split('.').map(str::parse::<u32>);
    let major = parts.next()?.ok()?;
    let minor = parts.next()?.ok()?;
    let micro = parts.next().map_or(Some(0), Result::ok)?;
    Some(QemuVersion {
        major,
        minor,
        micro,
        banner: banner.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_banner_parses() {
        let version = parse(
            "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022\n",
        )
        .unwrap();
        assert_eq!((version.major, version.minor, version.micro), (7, 2, 22));
        assert!(version.banner.ends_with("+b3)"));
    }

    #[test]
    fn two_part_version_and_garbage() {
        let version = parse("QEMU emulator version 9.1\n").unwrap();
        assert_eq!((version.major, version.minor, version.micro), (9, 1, 0));
        assert_eq!(parse("qemu-img version 7.2.0\n"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn installed_qemu_is_detected() {
        let version = detect(Path::new("qemu-system-x86_64")).unwrap();
        assert!(version.major >= 7, "{version:?}");
    }

    #[test]
    fn missing_binary_is_an_actionable_error() {
        let error = detect(Path::new("/nonexistent/qemu")).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("apt-get install qemu-system-x86")
        );
    }
}
