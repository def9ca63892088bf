//! `mvmctl port`: where an instance's published guest ports listen on the host.

use mvm_runtime::InstanceName;

use super::EXIT_REJECTED;

/// Show an instance's published ports: `GUEST/PROTO -> HOST_ADDR:HOST_PORT`,
/// one per line (the host port is the one chosen at `up` when the
/// declaration said 0).
#[derive(Debug, clap::Args)]
pub struct PortArgs {
    /// The instance.
    pub name: String,
    /// Only this guest port (`8080` or `8080/udp`); prints `HOST_ADDR:HOST_PORT`.
    pub port: Option<String>,
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: PortArgs) -> anyhow::Result<i32> {
    let name = InstanceName::parse(&args.name)?;
    let home = mvm_runtime::home::mvm_home();
    let dir = mvm_runtime::home::InstanceDir::new(&home, name.clone());
    if !dir.dir.is_dir() {
        return Err(mvm_runtime::RuntimeError::NoSuchInstance {
            name: name.to_string(),
        }
        .into());
    }
    let state = mvm_runtime::state::InstanceState::load(&dir.state_json())?;
    let mut ports = state.published().to_vec();
    if let Some(want) = &args.port {
        let (num, proto) = want.split_once('/').unwrap_or((want, "tcp"));
        let Ok(num) = num.parse::<u16>() else {
            anyhow::bail!(
                "`{want}` is not a port\n  hint: give a guest port, e.g. 8080 or 8080/udp"
            );
        };
        ports.retain(|p| p.guest_port == num && mvm_runtime::network::proto_str(p.proto) == proto);
        if ports.is_empty() {
            eprintln!(
                "error: {name} does not publish guest port {num}/{proto}\n  hint: `mvmctl port {name}` lists what it publishes"
            );
            return Ok(EXIT_REJECTED);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&ports)?);
    } else if args.port.is_some() {
        for p in &ports {
            println!("{}:{}", p.host_address, p.host_port);
        }
    } else {
        for p in &ports {
            println!("{}", p.describe());
        }
    }
    Ok(0)
}
