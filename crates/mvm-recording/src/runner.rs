//! Which TypeScript-aware runner executes a `.ts` script for the auto-run
//! path (seed 003), and with which arguments. Plain `node` cannot run `.ts`
//! in the supported Node range, so the order is: `MVM_TSX`, the
//! project-local `tsx`/`bun`/`deno` under `./node_modules/.bin`, then the
//! same three on `PATH` (absolute entries only: a relative one would pick a
//! binary from wherever compile happens to run). The path found is always
//! absolute, so messages name exactly what would run.

use std::path::{Path, PathBuf};

/// Environment variable that pins the runner binary explicitly.
pub const RUNNER_ENV: &str = "MVM_TSX";

/// Shown whenever no runner resolves (also by `mvmctl doctor`).
pub const INSTALL_HINT: &str = "install a TypeScript runner: `npm install --save-dev tsx` (project-local, \
lockfile-pinned; picked up from ./node_modules/.bin/tsx), or `npm install -g tsx`, or bun, or deno; \
or point MVM_TSX at a runner binary";

const NAMES: [&str; 3] = ["tsx", "bun", "deno"];

/// Where the runner was found, in resolution order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerSource {
    EnvOverride,
    ProjectLocal,
    Path,
}

impl RunnerSource {
    /// Where it was found, as a person would say it.
    pub fn describe(&self) -> &'static str {
        match self {
            RunnerSource::EnvOverride => "from MVM_TSX",
            RunnerSource::ProjectLocal => "project-local",
            RunnerSource::Path => "on PATH",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    /// `tsx`, `bun`, `deno`, or the file name of an `MVM_TSX` binary.
    pub kind: String,
    pub path: PathBuf,
    pub source: RunnerSource,
}

impl Runner {
    /// Arguments that make this runner execute `script` in record mode,
    /// writing the recording to `out`. Both paths should be absolute.
    pub fn args_for(&self, script: &Path, out: &Path) -> Vec<String> {
        let script_dir = script.parent().unwrap_or(Path::new("/"));
        let script = script.display().to_string();
        match self.kind.as_str() {
            // deno's permissions: exactly what recording needs (read the
            // script's directory, write the one recording file, read the
            // two SDK variables); no network, no subprocesses, no prompt.
            "deno" => vec![
                "run".into(),
                "--no-prompt".into(),
                format!("--allow-read={}", script_dir.display()),
                format!("--allow-write={}", out.display()),
                format!("--allow-env={}", crate::autorun::SDK_ENV.join(",")),
                script,
            ],
            "bun" => vec!["run".into(), script],
            _ => vec![script],
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResolveError {
    #[error("{RUNNER_ENV}={0} does not name an executable file")]
    BadOverride(String),
    #[error(
        "no TypeScript runner found (looked for MVM_TSX, ./node_modules/.bin/{{tsx,bun,deno}}, and tsx, bun, deno on PATH)"
    )]
    NotFound,
}

/// Resolves the runner from the real environment, relative to `cwd`.
pub fn resolve(cwd: &Path) -> Result<Runner, ResolveError> {
    resolve_with(
        std::env::var_os(RUNNER_ENV).map(PathBuf::from),
        cwd,
        std::env::var_os("PATH").as_deref(),
    )
}

/// Resolution with every input explicit, so tests need no global state.
pub fn resolve_with(
    override_path: Option<PathBuf>,
    cwd: &Path,
    path_var: Option<&std::ffi::OsStr>,
) -> Result<Runner, ResolveError> {
    if let Some(p) = override_path.filter(|p| !p.as_os_str().is_empty()) {
        let found = if p.components().count() > 1 {
            std::path::absolute(&p).ok()
        } else {
            search_path(&p, path_var)
        };
        return match found.filter(|f| is_executable(f)) {
            Some(path) => Ok(Runner {
                kind: kind_of(&path),
                path,
                source: RunnerSource::EnvOverride,
            }),
            None => Err(ResolveError::BadOverride(p.display().to_string())),
        };
    }
    let cwd = std::path::absolute(cwd).unwrap_or_else(|_| cwd.to_path_buf());
    for name in NAMES {
        let local = cwd.join("node_modules/.bin").join(name);
        if is_executable(&local) {
            return Ok(Runner {
                kind: name.into(),
                path: local,
                source: RunnerSource::ProjectLocal,
            });
        }
    }
    for name in NAMES {
        if let Some(path) = search_path(Path::new(name), path_var) {
            return Ok(Runner {
                kind: name.into(),
                path,
                source: RunnerSource::Path,
            });
        }
    }
    Err(ResolveError::NotFound)
}

fn kind_of(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    NAMES
        .iter()
        .find(|k| name.starts_with(*k))
        .map_or(name, |k| (*k).to_owned())
}

fn search_path(name: &Path, path_var: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path_var?)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn exe(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn order_is_override_then_local_then_path() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().join("proj");
        let bin = dir.path().join("bin");
        exe(&bin.join("deno"));
        exe(&bin.join("tsx"));
        let path = std::env::join_paths([&bin]).unwrap();

        let r = resolve_with(None, &cwd, Some(&path)).unwrap();
        assert_eq!((r.kind.as_str(), r.source), ("tsx", RunnerSource::Path));

        exe(&cwd.join("node_modules/.bin/bun"));
        let r = resolve_with(None, &cwd, Some(&path)).unwrap();
        assert_eq!(
            (r.kind.as_str(), r.source),
            ("bun", RunnerSource::ProjectLocal)
        );

        let pinned = dir.path().join("my-deno");
        exe(&pinned);
        let r = resolve_with(Some(pinned.clone()), &cwd, Some(&path)).unwrap();
        assert_eq!((r.path, r.source), (pinned, RunnerSource::EnvOverride));
    }

    #[test]
    fn nothing_found_and_bad_override_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = std::env::join_paths([dir.path()]).unwrap();
        assert_eq!(
            resolve_with(None, dir.path(), Some(&empty)),
            Err(ResolveError::NotFound)
        );
        let plain = dir.path().join("not-exec");
        std::fs::write(&plain, "x").unwrap();
        assert!(matches!(
            resolve_with(Some(plain), dir.path(), Some(&empty)),
            Err(ResolveError::BadOverride(_))
        ));
    }

    #[test]
    fn runner_arguments() {
        let r = |kind: &str| Runner {
            kind: kind.into(),
            path: PathBuf::from(kind),
            source: RunnerSource::Path,
        };
        let (script, out) = (Path::new("/p/a.ts"), Path::new("/t/rec.json"));
        assert_eq!(r("tsx").args_for(script, out), ["/p/a.ts"]);
        assert_eq!(
            r("deno").args_for(script, out),
            [
                "run",
                "--no-prompt",
                "--allow-read=/p",
                "--allow-write=/t/rec.json",
                "--allow-env=MVM_SDK_MODE,MVM_SDK_OUT_PATH",
                "/p/a.ts"
            ]
        );
    }

    #[test]
    fn relative_path_entries_are_ignored_and_found_paths_are_absolute() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        exe(&bin.join("tsx"));
        // The same directory, written relative to the current one: a PATH
        // entry like this would pick a binary from wherever compile runs.
        let up = std::env::current_dir().unwrap().components().count() - 1;
        let relative: PathBuf = std::iter::repeat_n(Path::new(".."), up)
            .collect::<PathBuf>()
            .join(bin.strip_prefix("/").unwrap());
        assert!(relative.join("tsx").exists() && relative.is_relative());
        let path = std::env::join_paths([&relative]).unwrap();
        assert_eq!(
            resolve_with(None, Path::new("/nonexistent"), Some(&path)),
            Err(ResolveError::NotFound)
        );
        let path = std::env::join_paths([&relative, &bin]).unwrap();
        let r = resolve_with(None, Path::new("/nonexistent"), Some(&path)).unwrap();
        assert_eq!(r.path, bin.join("tsx"));
        // A relative override is made absolute too.
        let r = resolve_with(Some(relative.join("tsx")), Path::new("/nonexistent"), None).unwrap();
        assert!(r.path.is_absolute(), "{}", r.path.display());
    }
}
