//! The one place compile executes a user's file on the host: a TypeScript
//! recording script (no declaration in any form, uses the SDK's `Sandbox`),
//! and only when the user opted in ([`HostRun::allowed`]: `mvmctl compile
//! --allow-host-run` or `MVM_ALLOW_HOST_RUN=1`), never under `--check`, and
//! under a timeout. Otherwise it is refused with `E_HOST_RUN_REFUSED`,
//! naming the exact command that would have run. The caller reads the
//! policy from its flags and environment; this module only applies it.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use mvm_compile::CompileRequest;
use mvm_ir::{Code, Finding, Location};

use super::{InputError, LoadOptions};
use crate::autorun::{self, AutorunError, KEPT_ENV};
use crate::runner::Runner;

/// Setting this to `1` has the effect of `--allow-host-run`; the refusal
/// names it, and the CLI reads it.
pub const ALLOW_HOST_RUN_ENV: &str = "MVM_ALLOW_HOST_RUN";

/// What the user allowed for this compile.
#[derive(Debug, Clone)]
pub struct HostRun {
    /// `--allow-host-run` or `MVM_ALLOW_HOST_RUN=1`.
    pub allowed: bool,
    /// `--check`: nothing is ever run.
    pub check: bool,
    /// How long the script may run (`--host-run-timeout`).
    pub timeout: Duration,
}

impl Default for HostRun {
    /// Nothing is run.
    fn default() -> HostRun {
        HostRun {
            allowed: false,
            check: false,
            timeout: autorun::DEFAULT_TIMEOUT,
        }
    }
}

/// What the user is told while an input loads; the caller prints it
/// (`mvmctl` on stderr) when it arrives, so a warning comes before the
/// script runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Shown as `warning: ...`.
    Warning(String),
    /// Shown as it is.
    Info(String),
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Warning(m) => write!(f, "warning: {m}"),
            Notice::Info(m) => f.write_str(m),
        }
    }
}

/// Records `path` by running it, if allowed, and lowers the recording.
/// `at` is the script's first use of `Sandbox`. The runner is resolved from
/// the current directory, where the script also runs.
pub(super) fn record(
    path: &Path,
    at: Location,
    opts: &LoadOptions,
    notify: &mut dyn FnMut(Notice),
) -> Result<CompileRequest, InputError> {
    let cwd = std::env::current_dir().map_err(|source| InputError::Read {
        path: ".".into(),
        source,
    })?;
    let runner = autorun::resolve(&cwd);
    record_with(path, at, opts, &cwd, runner, notify)
}

/// [`record`] with the runner already resolved (or not found).
fn record_with(
    path: &Path,
    at: Location,
    opts: &LoadOptions,
    cwd: &Path,
    runner: Result<Runner, AutorunError>,
    notify: &mut dyn FnMut(Notice),
) -> Result<CompileRequest, InputError> {
    let policy = &opts.host_run;
    let command = match &runner {
        Ok(r) => autorun::describe(r, path),
        Err(_) => "a TypeScript runner (none is installed: tsx, bun or deno)".to_string(),
    };
    let secs = policy.timeout.as_secs();
    let what = format!(
        "{} has no mvm.app declaration and uses the SDK's Sandbox, so compiling it means running it ON THIS HOST: {command} in record mode, to observe its Sandbox calls",
        path.display()
    );
    let refuse = |message: String, hint: String| {
        InputError::Rejected(vec![
            Finding::new(Code::EHostRunRefused, "", message, hint).at(at.clone()),
        ])
    };
    if policy.check {
        return Err(refuse(
            format!("{what}; --check never runs anything"),
            "drop --check and pass --allow-host-run to record and compile it, if you trust it; or declare the workload statically with mvm.app({...})(fn), which is never run".into(),
        ));
    }
    if !policy.allowed {
        return Err(refuse(
            format!("{what}; refused without --allow-host-run"),
            format!(
                "if you trust this script, pass --allow-host-run (or set {ALLOW_HOST_RUN_ENV}=1): it then runs with a cleared environment for at most {secs} s (--host-run-timeout); or declare the workload statically with mvm.app({{...}})(fn), which is never run"
            ),
        ));
    }
    let failed = |source| InputError::Autorun {
        path: path.to_path_buf(),
        source,
    };
    let runner = runner.map_err(failed)?;
    notify(Notice::Warning(format!(
        "{}: --allow-host-run: running {command} ON THIS HOST in record mode, for at most {secs} s, \
         with only {} of this environment (plus MVM_SDK_MODE, MVM_SDK_OUT_PATH){}; a static mvm.app declaration would never run",
        path.display(),
        KEPT_ENV.join(", "),
        if runner.kind == "deno" {
            ", allowed to read the script's directory and write only the recording"
        } else {
            ""
        },
    )));
    let run = autorun::record_with(&runner, path, cwd, policy.timeout).map_err(failed)?;
    notify(Notice::Info(format!(
        "recorded {} with {}",
        path.display(),
        run.runner.path.display()
    )));
    // The workload is named after the script unless --name says otherwise.
    let mut lower = opts.recording.clone();
    if lower.name.is_none() {
        lower.name = path
            .file_stem()
            .map(|s| s.to_string_lossy().replace('_', "-").to_lowercase());
    }
    super::from_recording(
        &run.recording,
        &lower,
        opts.source_root.as_deref(),
        &super::directory_of(path),
        format!("typescript-recording:{}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{ResolveError, RunnerSource};
    use std::os::unix::fs::PermissionsExt;

    fn at() -> Location {
        Location {
            file: "rec.ts".into(),
            line: 3,
            column: 7,
        }
    }

    fn allowed() -> LoadOptions {
        LoadOptions {
            host_run: HostRun {
                allowed: true,
                check: false,
                timeout: Duration::from_secs(30),
            },
            ..LoadOptions::default()
        }
    }

    /// A "runner" that leaves `dir/ran` and writes a fixed recording of one
    /// sandbox rooted in `dir` to the path the SDK would write to.
    fn fake_runner(dir: &Path) -> Runner {
        let recording = format!(
            r#"{{"recording_version":1,"sdk":{{"language":"typescript","version":"0.1.0"}},"source_root":"{}",
            "sandboxes":[{{"template":"node-22","env":{{}},"include":["**/*"],"resources":{{}},"network":{{}},
            "operations":[{{"op":"write","path":"/app/conf.txt","data_b64":"aGkK"}},{{"op":"run","cmd":["node","main.js"],"background":true}}]}}]}}"#,
            dir.display()
        );
        let path = dir.join("fake-tsx");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\ntouch {}\ncat > \"$MVM_SDK_OUT_PATH\" <<'EOF'\n{recording}\nEOF\n",
                dir.join("ran").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Runner {
            kind: "tsx".into(),
            path,
            source: RunnerSource::EnvOverride,
        }
    }

    fn refusal(e: InputError) -> Finding {
        match e {
            InputError::Rejected(mut f) if f.len() == 1 => f.remove(0),
            other => panic!("expected one finding, got {other:?}"),
        }
    }

    #[test]
    fn without_the_opt_in_or_under_check_nothing_runs() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("my_script.ts");
        let marker = dir.path().join("ran");
        let runner = dir.path().join("tsx");
        std::fs::write(&runner, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
        std::fs::set_permissions(&runner, std::fs::Permissions::from_mode(0o755)).unwrap();
        let runner = || {
            Ok(Runner {
                kind: "tsx".into(),
                path: runner.clone(),
                source: RunnerSource::Path,
            })
        };
        let mut notices = Vec::new();
        let mut notify = |n| notices.push(n);

        let f = refusal(
            record_with(
                &script,
                at(),
                &LoadOptions::default(),
                dir.path(),
                runner(),
                &mut notify,
            )
            .unwrap_err(),
        );
        assert_eq!((f.code, f.location), (Code::EHostRunRefused, Some(at())));
        assert!(
            f.message.ends_with("refused without --allow-host-run"),
            "{}",
            f.message
        );
        assert!(
            f.message
                .contains(&runner().unwrap().path.display().to_string())
        );
        assert!(f.hint.contains("MVM_ALLOW_HOST_RUN=1") && f.hint.contains("at most 60 s"));

        let mut check = allowed();
        check.host_run.check = true;
        let f = refusal(
            record_with(&script, at(), &check, dir.path(), runner(), &mut notify).unwrap_err(),
        );
        assert!(
            f.message.ends_with("--check never runs anything"),
            "{}",
            f.message
        );

        let none = Err(AutorunError::NoRunner(ResolveError::NotFound));
        let f = refusal(
            record_with(
                &script,
                at(),
                &LoadOptions::default(),
                dir.path(),
                none,
                &mut notify,
            )
            .unwrap_err(),
        );
        assert!(f.message.contains("none is installed"), "{}", f.message);

        assert!(!marker.exists(), "a refused script must not run");
        assert!(notices.is_empty(), "{notices:?}");
    }

    #[test]
    fn allowed_it_runs_warns_first_and_lowers_the_recording() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("My_Script.ts");
        let runner = fake_runner(dir.path());
        let mut notices = Vec::new();
        let req = record_with(
            &script,
            at(),
            &allowed(),
            dir.path(),
            Ok(runner.clone()),
            // Whether the script had run when each notice came.
            &mut |n| notices.push((n, dir.path().join("ran").exists())),
        )
        .unwrap();
        assert_eq!(
            req.origin,
            format!("typescript-recording:{}", script.display())
        );
        // Named after the script; its source root confined to the script's directory.
        assert_eq!(req.workload.id, "my-script");
        assert_eq!(req.source_root, dir.path().canonicalize().unwrap());
        assert_eq!(req.extra_files["conf.txt"], b"hi\n");
        match &notices[..] {
            [(Notice::Warning(w), false), (Notice::Info(i), true)] => {
                assert!(
                    w.contains("ON THIS HOST") && w.contains("at most 30 s"),
                    "{w}"
                );
                assert_eq!(
                    i,
                    &format!(
                        "recorded {} with {}",
                        script.display(),
                        runner.path.display()
                    )
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(notices[0].0.to_string().starts_with("warning: "));
        assert!(!notices[1].0.to_string().starts_with("warning: "));

        // --name and --source-root win over the script's own.
        let other = tempfile::tempdir().unwrap();
        let mut opts = allowed();
        opts.recording.name = Some("given".into());
        opts.source_root = Some(other.path().to_path_buf());
        let req = record_with(&script, at(), &opts, dir.path(), Ok(runner), &mut |_| {}).unwrap();
        assert_eq!(
            (req.workload.id.as_str(), req.source_root.as_path()),
            ("given", other.path())
        );
    }

    #[test]
    fn a_missing_runner_is_an_error_once_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let none = Err(AutorunError::NoRunner(ResolveError::NotFound));
        let e = record_with(
            &dir.path().join("s.ts"),
            at(),
            &allowed(),
            dir.path(),
            none,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                InputError::Autorun {
                    source: AutorunError::NoRunner(_),
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("recording it failed"), "{e}");
    }
}
