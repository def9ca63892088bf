//! `mvmctl serve`: the local HTTP API (docs/api.md).

/// Serve the local API that the runtime SDKs use: sandboxes, commands,
/// files, invoke and metrics (docs/api.md, docs/openapi.json).
///
/// Listens on $MVM_HOME/api.sock (owner only, no token); with --listen also
/// on TCP, where every request needs `Authorization: Bearer TOKEN` (the
/// token is kept in $MVM_HOME/api-token, 0600). Runs until interrupted.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Also listen on this TCP address (e.g. 127.0.0.1:7878), token required.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// Print the TCP token (creating it if needed) and exit.
    #[arg(long)]
    pub print_token: bool,
}

pub fn run(args: ServeArgs) -> anyhow::Result<i32> {
    let home = mvm_runtime::home::mvm_home();
    if args.print_token {
        println!("{}", mvm_api::auth::load_or_create_token(&home)?);
        return Ok(0);
    }
    let mvmctl = std::env::current_exe()?;
    mvm_api::serve_blocking(mvm_api::ServeOptions {
        home,
        listen: args.listen,
        mvmctl,
    })?;
    Ok(0)
}
