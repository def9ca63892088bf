//! The build log: every tool the builder runs writes here, and a failing
//! step reports the log's last lines.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::ImageError;

/// Lines of the log shown when a step fails.
const TAIL_LINES: usize = 25;

pub struct BuildLog {
    path: PathBuf,
    file: File,
}

impl BuildLog {
    pub fn create(path: &Path) -> Result<BuildLog, ImageError> {
        if let Some(parent) = path.parent() {
            crate::store::private_dir_all(parent).map_err(ImageError::io(parent))?;
        }
        let file = std::os::unix::fs::OpenOptionsExt::mode(
            File::options().create(true).append(true),
            0o600,
        )
        .open(path)
        .map_err(ImageError::io(path))?;
        Ok(BuildLog {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends `line`. Much of what is noted is guest output (install
    /// logs, hook output, the builder's console), so control characters
    /// other than newline and tab are escaped: the log and its tail in
    /// error messages reach terminals.
    pub fn note(&mut self, line: &str) {
        // The log is a diagnostic aid; a failed write must not fail the build.
        let _ = writeln!(self.file, "== {}", printable(line));
    }

    /// Runs `cmd` with its output appended to the log. `tool` names the
    /// program for a "not installed" error; `hint` says how to install it.
    pub fn run(
        &mut self,
        step: &str,
        tool: &'static str,
        hint: &'static str,
        cmd: &mut Command,
    ) -> Result<(), ImageError> {
        self.note(&format!("{step}: {cmd:?}"));
        let out = self.file.try_clone().map_err(ImageError::io(&self.path))?;
        let err = self.file.try_clone().map_err(ImageError::io(&self.path))?;
        let status = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .status()
            .map_err(|e| ImageError::MissingTool {
                tool,
                detail: e.to_string(),
                hint,
            })?;
        if status.success() {
            return Ok(());
        }
        Err(self.failed(step, &status.to_string()))
    }

    pub fn failed(&mut self, step: &str, status: &str) -> ImageError {
        let _ = self.file.flush();
        ImageError::Step {
            step: step.to_string(),
            status: status.to_string(),
            log: self.path.clone(),
            tail: tail(&self.path),
        }
    }
}

pub fn tail(path: &Path) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..]
        .iter()
        .map(|l| printable(l))
        .collect::<Vec<_>>()
        .join("\n")
}

fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    mvm_ir::text::escape_control_lines(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guest output noted in the log, and the tail an error prints, carry
    /// no raw terminal escapes.
    #[test]
    fn guest_text_is_escaped_in_the_log_and_its_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("build.log");
        let mut log = BuildLog::create(&path).unwrap();
        log.note("$ npm ci\n\x1b]0;owned\x07\x1b[2Jdone\r");
        let err = log.failed("install", "exit 1");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
        assert!(text.contains("\\x1b]0;owned"), "{text:?}");
        let ImageError::Step { tail, .. } = err else {
            panic!()
        };
        assert!(!tail.contains('\x1b'), "{tail:?}");
    }
}
