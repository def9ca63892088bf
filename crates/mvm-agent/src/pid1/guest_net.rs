//! The guest half of network egress, applied once the new root is mounted
//! (launch.json lives there) and only when the host attached a device.
//!
//! - launch.json `bridge`: the routing [`policy`] (granted pairs routed,
//!   the rest refused at once), then `/etc/hosts` and `/etc/resolv.conf`.
//! - `host`: a default route via QEMU's gateway, then the `/etc` files.
//! - no launch.json (the image builder's VM): the proxy only; `/etc` is
//!   the builder's business.
//! - `none` with a device anyway: nothing out, fail closed.

use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use mvm_launch::net::{GATEWAY, Layout, LayoutError};
use mvm_launch::{Launch, LaunchError, NetworkMode};

use super::etc::{self, EtcError};
use super::net::GUEST_NIC;
use super::policy::{self, TooManyRules};
use super::rtnl::{Family, Rtnl, Rule};

/// Where launch.json is, under the new root.
const LAUNCH_JSON: &str = "etc/mvm/launch.json";

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{path}: {source}; {}", source.hint())]
    Launch {
        path: PathBuf,
        #[source]
        source: LaunchError,
    },
    #[error("launch.json network: {0}")]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    TooManyRules(#[from] TooManyRules),
    #[error("cannot set the guest's routing policy: {0}")]
    Netlink(#[source] io::Error),
    #[error(transparent)]
    Etc(#[from] EtcError),
}

/// [`apply_with_relays`] without the relays (for tests).
#[cfg(test)]
pub fn apply(root: &Path, workload: bool) -> Result<String, NetError> {
    apply_with_relays(root, workload).map(|(done, _)| done)
}

/// Applies the network half of `root`'s launch.json, with eth0 already
/// up. Returns what was done, for the log, and the `(UDP port, relay
/// port)` pairs the agent must relay (bridge mode's published UDP ports).
pub fn apply_with_relays(
    root: &Path,
    workload: bool,
) -> Result<(String, Vec<(u16, u16)>), NetError> {
    // The image builder's VM has a launch.json too (the image's), but
    // its network is the builder's: only the gate. The runtime says
    // `mvm.net=workload` when the workload's own network is attached.
    let launch = if workload { read_launch(root)? } else { None };
    let Some(launch) = launch else {
        if workload {
            return Err(NetError::Launch {
                path: root.join(LAUNCH_JSON),
                source: LaunchError::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "mvm.net=workload but the image has no launch.json",
                )),
            });
        }
        install(&policy::builder())?;
        return Ok((
            "image build: only the proxy is reachable".into(),
            Vec::new(),
        ));
    };
    let layout = Layout::of(&launch.network)?;
    match layout.mode {
        NetworkMode::Bridge => {
            let rules = policy::bridge(&layout)?;
            if !layout.published.is_empty() {
                // Replies from a published port to a client beyond the host's
                // loopback (`up --publish-address`) need a route; the rules
                // still refuse everything else before it is used. Added
                // first: the kernel checks the gateway through the rules.
                let mut rtnl = Rtnl::open().map_err(NetError::Netlink)?;
                rtnl.add_default_route(GATEWAY, GUEST_NIC)
                    .map_err(NetError::Netlink)?;
            }
            install(&rules)?;
            etc::write(root, &layout)?;
            let done = format!(
                "bridge: {} names, proxy {}, {} routing rules",
                layout.names.len(),
                if layout.proxy { "on" } else { "off" },
                rules.len()
            );
            Ok((done, layout.udp_relays()))
        }
        NetworkMode::Host => {
            let mut rtnl = Rtnl::open().map_err(NetError::Netlink)?;
            rtnl.add_default_route(GATEWAY, GUEST_NIC)
                .map_err(NetError::Netlink)?;
            etc::write(root, &layout)?;
            Ok((format!("host: default via {GATEWAY}"), Vec::new()))
        }
        NetworkMode::None => {
            install(&policy::deny_all())?;
            Ok((
                "launch.json says network none but a device is attached: all egress refused".into(),
                Vec::new(),
            ))
        }
    }
}

/// launch.json under `root`, `None` when there is none. Not followed if a
/// symlink: it would resolve against the initramfs, not the new root.
fn read_launch(root: &Path) -> Result<Option<Launch>, NetError> {
    let path = root.join(LAUNCH_JSON);
    let failed = |source: LaunchError| NetError::Launch {
        path: path.clone(),
        source,
    };
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(LaunchError::Io(e))),
    };
    let mut bytes = Vec::new();
    file.take(mvm_launch::MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| failed(LaunchError::Io(e)))?;
    mvm_launch::parse(&bytes).map(Some).map_err(failed)
}

/// Adds `rules` in order. An IPv6 rule a kernel without IPv6 refuses is
/// skipped: there is no IPv6 to leak through.
pub(super) fn install(rules: &[Rule]) -> Result<(), NetError> {
    let mut rtnl = Rtnl::open().map_err(NetError::Netlink)?;
    for rule in rules {
        match rtnl.add_rule(rule) {
            Ok(()) => {}
            Err(e) if rule.family == Family::V6 && e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
            }
            Err(e) => return Err(NetError::Netlink(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_json_absent_bad_or_linked() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_launch(dir.path()).unwrap().is_none());
        let mvm = dir.path().join("etc/mvm");
        std::fs::create_dir_all(&mvm).unwrap();
        std::fs::write(mvm.join("launch.json"), b"{\"launch_version\": 1}").unwrap();
        let e = read_launch(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("etc/mvm/launch.json") && e.contains("launch_version"),
            "{e}"
        );
        std::fs::remove_file(mvm.join("launch.json")).unwrap();
        let elsewhere = dir.path().join("real.json");
        std::fs::write(&elsewhere, b"{}").unwrap();
        std::os::unix::fs::symlink(&elsewhere, mvm.join("launch.json")).unwrap();
        let e = read_launch(dir.path()).unwrap_err().to_string();
        assert!(e.contains("cannot read launch.json"), "{e}");
    }
}
