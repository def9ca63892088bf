//! `mvmctl completions SHELL` and `mvmctl man`: shell completions and man
//! pages, generated from the same clap definitions that parse the
//! arguments, so they cannot drift from the CLI.

use std::path::PathBuf;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to print a completion script for.
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write `mvmctl.1` and one `mvmctl-COMMAND.1` per command into this
    /// directory instead of printing `mvmctl.1`.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `cli` without its hidden (internal) commands, which clap_complete
/// would otherwise offer.
fn visible(cli: &clap::Command) -> clap::Command {
    let mut out = clap::Command::new(cli.get_name().to_string())
        .subcommands(cli.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(version) = cli.get_version() {
        out = out.version(version.to_string());
    }
    if let Some(about) = cli.get_about() {
        out = out.about(about.clone());
    }
    out
}

pub fn completions(args: CompletionsArgs, cli: clap::Command) -> anyhow::Result<i32> {
    let mut cli = visible(&cli);
    let name = cli.get_name().to_string();
    clap_complete::generate(args.shell, &mut cli, name, &mut std::io::stdout());
    Ok(0)
}

pub fn man(args: ManArgs, cli: clap::Command) -> anyhow::Result<i32> {
    let Some(dir) = args.out else {
        clap_mangen::Man::new(cli).render(&mut std::io::stdout())?;
        return Ok(0);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut pages = vec![("mvmctl".to_string(), cli.clone())];
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("mvmctl-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, cmd) in pages {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        // Staged, then renamed: a reader never sees half a page.
        let path = dir.join(format!("{name}.1"));
        let tmp = dir.join(format!(".{name}.1.tmp"));
        std::fs::write(&tmp, &page).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(0)
}
