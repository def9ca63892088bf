//! mvmctl: the command-line interface. Argument parsing and printing only;
//! the work happens in the library crates.

mod commands;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "mvmctl",
    version,
    about = "Turn a declared function into a microVM workload and run it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compile a declaration (.py, .ts), Workload IR (.json or - for stdin)
    /// into a reviewable build directory or deterministic .tgz.
    Compile(commands::compile::CompileArgs),
    /// Build a bootable image from a compile output (directory or .tgz).
    Build(commands::build::BuildArgs),
    /// Boot an image as a microVM instance; returns once it is ready.
    Up(commands::up::UpArgs),
    /// Call a function entrypoint of a running instance; prints its JSON result.
    Invoke(commands::invoke::InvokeArgs),
    /// Run a command inside a running instance, streaming its output.
    Exec(commands::exec::ExecArgs),
    /// Copy a file into or out of a running instance (NAME:/path), streamed.
    Cp(commands::cp::CpArgs),
    /// List instances.
    Ps(commands::ps::PsArgs),
    /// Print (or follow) an instance's console log, or its egress log.
    Logs(commands::logs::LogsArgs),
    /// Show where an instance's published ports listen on the host.
    Port(commands::port::PortArgs),
    /// Stop instances and remove their state.
    Down(commands::down::DownArgs),
    /// Save a running instance to disk and stop it; `resume` brings it back.
    Pause(commands::pause::PauseArgs),
    /// Bring a paused instance back where it was.
    Resume(commands::pause::ResumeArgs),
    /// Snapshot a running instance (`snapshot NAME TAG`), or list/rm snapshots.
    Snapshot(commands::snapshot::SnapshotArgs),
    /// Serve the local HTTP API the runtime SDKs use (docs/api.md).
    Serve(commands::serve::ServeArgs),
    /// Check whether this host can run mvm, and what to fix if not.
    Doctor(commands::doctor::DoctorArgs),
    /// Manage signing keys (Ed25519) under the mvm home.
    #[command(subcommand)]
    Key(commands::key::KeyCommand),
    /// Manage host secrets (encrypted, owner-only) under the mvm home.
    #[command(subcommand)]
    Secret(commands::secret::SecretCommand),
    /// Describe exactly what `up TARGET` would run, as a plan to review and sign.
    Plan(commands::plan::PlanArgs),
    /// Sign a plan with a key (adds a DSSE signature).
    Sign(commands::plan::SignArgs),
    /// Check a plan's signatures, key trust and digests; print who signed what.
    Verify(commands::plan::VerifyArgs),
    /// Show or verify the audit trail.
    Audit(commands::audit::AuditArgs),
    /// Work with Workload IR files.
    #[command(subcommand)]
    Ir(commands::ir::IrCommand),
    /// List, inspect and remove built images.
    #[command(subcommand)]
    Image(commands::image::ImageCommand),
    /// Remove what nothing uses: dead instances, unnamed images, stale
    /// template snapshots, leftovers of killed builds.
    Prune(commands::prune::PruneArgs),
    /// The download cache (kernels, base roots, wheels).
    #[command(subcommand)]
    Cache(commands::prune::CacheCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(commands::completions::CompletionsArgs),
    /// Print the man page, or write one per command with --out DIR.
    Man(commands::completions::ManArgs),
    #[command(name = "__supervise", hide = true)]
    Supervise(commands::supervise::SuperviseArgs),
    #[command(name = "__egress-proxy", hide = true)]
    EgressProxy(commands::egress::EgressArgs),
}

/// The error and its causes, `outer: cause: cause`, like anyhow's `{:#}`,
/// but a cause whose text the message already holds is not repeated:
/// many errors name their cause in their own message and also keep it as
/// the source, which `{:#}` would print twice.
fn describe(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn main() -> ExitCode {
    // The egress gate's stdout and stderr are the guest's socket: not even
    // an argument error (which names host paths) may be written there.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "__egress-proxy")
    {
        commands::egress::silence_stdio();
    }
    let cli = Cli::parse();
    init_logging(matches!(cli.command, Command::Supervise(_)));
    let result = match cli.command {
        Command::Compile(args) => commands::compile::run(args),
        Command::Build(args) => commands::build::run(args),
        Command::Up(args) => commands::up::run(args),
        Command::Invoke(args) => commands::invoke::run(args),
        Command::Exec(args) => commands::exec::run(args),
        Command::Cp(args) => commands::cp::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Ps(args) => commands::ps::run(args),
        Command::Logs(args) => commands::logs::run(args),
        Command::Port(args) => commands::port::run(args),
        Command::Down(args) => commands::down::run(args),
        Command::Pause(args) => commands::pause::pause(args),
        Command::Resume(args) => commands::pause::resume(args),
        Command::Snapshot(args) => commands::snapshot::run(args),
        Command::Doctor(args) => commands::doctor::run(args),
        Command::Key(cmd) => commands::key::run(cmd),
        Command::Secret(cmd) => commands::secret::run(cmd),
        Command::Plan(args) => commands::plan::plan(args),
        Command::Sign(args) => commands::plan::sign(args),
        Command::Verify(args) => commands::plan::verify(args),
        Command::Audit(args) => commands::audit::run(args),
        Command::Ir(cmd) => commands::ir::run(cmd),
        Command::Image(cmd) => commands::image::run(cmd),
        Command::Prune(args) => commands::prune::run(args),
        Command::Cache(cmd) => commands::prune::cache(cmd),
        Command::Completions(args) => commands::completions::completions(args, Cli::command()),
        Command::Man(args) => commands::completions::man(args, Cli::command()),
        Command::Supervise(args) => commands::supervise::run(args),
        Command::EgressProxy(args) => commands::egress::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) if json_run() => {
            eprintln!("{}", error_json(&e));
            ExitCode::from(1)
        }
        Err(e) => {
            // Errors carry guest and file text (hook output, console tails,
            // names): nothing in them may drive the terminal.
            eprintln!("error: {}", mvm_ir::text::for_terminal(&describe(&e)));
            ExitCode::from(1)
        }
    }
}

/// Whether the user asked for JSON output (`--json`, `--format json`):
/// then an error is JSON too.
fn json_run() -> bool {
    // Not what follows `--`: that is a guest command's own arguments.
    let args: Vec<String> = std::env::args().take_while(|a| a != "--").collect();
    args.iter().any(|a| a == "--json" || a == "--format=json")
        || args
            .windows(2)
            .any(|w| w[0] == "--format" && w[1] == "json")
}

/// The error shape of `--json` runs (docs/user-guide.md): one line,
/// `{"error": {"code", "message", "hint"}}`, the code as the local API
/// gives it where the runtime names one.
fn error_json(e: &anyhow::Error) -> String {
    let code = e
        .chain()
        .find_map(|c| c.downcast_ref::<mvm_runtime::RuntimeError>())
        .map(mvm_runtime::RuntimeError::code)
        .unwrap_or("E_ERROR");
    // Guest and file text may be in it: escaped as on a terminal, since
    // JSON leaves C1 controls as they are.
    let text = mvm_ir::text::for_terminal(&describe(e)).into_owned();
    let (message, hint) = match text.split_once("\n  hint: ") {
        Some((m, h)) => (m.to_string(), Some(h.trim().to_string())),
        None => (text, None),
    };
    serde_json::json!({"error": {"code": code, "message": message, "hint": hint}}).to_string()
}

/// Logs go to stderr, quiet unless `MVM_LOG` (an `EnvFilter` directive such
/// as `debug` or `mvm_compile=trace`) asks for more. The supervisor's stderr
/// is the instance's supervisor.log, so it logs at info, timestamped, plain.
fn init_logging(supervisor: bool) {
    let default = if supervisor { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MVM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if supervisor {
        fmt.with_ansi(false).init();
    } else {
        fmt.without_time().init();
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[derive(Debug, thiserror::Error)]
    #[error("listing /x: {0}")]
    struct Listing(#[source] std::io::Error);

    #[test]
    fn a_cause_the_message_already_names_is_not_repeated() {
        let io = || std::io::Error::from_raw_os_error(20);
        let e = anyhow::Error::new(Listing(io()));
        assert_eq!(format!("{e:#}"), format!("listing /x: {0}: {0}", io()));
        assert_eq!(describe(&e), format!("listing /x: {}", io()));
        let e = anyhow::Error::new(io()).context("reading the state");
        assert_eq!(describe(&e), format!("reading the state: {}", io()));
    }
}
