//! Dependency installation from the declared lockfile, as run inside the
//! builder microVM: the commands per tool, their environment, the egress
//! grants they get, and how the installed packages are read back for
//! image.lock.

use std::collections::{BTreeMap, BTreeSet};

use mvm_egress::Grant;
use serde::{Deserialize, Serialize};

use crate::compiled::DepsDecl;
use crate::table::DepsTool;

/// Where the workload's source lives in the guest; installs run here.
pub const APP_DIR: &str = "/app";
/// The host's CA bundle, copied into the builder's tmpfs for the install
/// only (never into the image): TLS-inspecting egress proxies re-sign
/// registry traffic with a CA that only the host trusts.
pub const GUEST_CA_FILE: &str = "/run/mvm/host-ca.pem";

/// Registries each tool reaches by default; hosts named by https URLs in
/// the lockfile are added.
fn default_hosts(tool: DepsTool) -> &'static [&'static str] {
    match tool {
        DepsTool::Uv | DepsTool::PipTools => &["pypi.org", "files.pythonhosted.org"],
        DepsTool::Npm | DepsTool::Pnpm => &["registry.npmjs.org"],
        DepsTool::Yarn => &["registry.yarnpkg.com", "registry.npmjs.org"],
        DepsTool::None => &[],
    }
}

/// A package as installed, for image.lock.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    pub tool: DepsTool,
    /// Relative to the app directory.
    pub lockfile: String,
    pub grants: Vec<Grant>,
}

impl Install {
    /// The install for a declaration, or `None` when nothing is declared.
    /// `lockfile_text` is the lockfile as bundled.
    pub fn plan(decl: &DepsDecl, lockfile_text: &str) -> Option<Install> {
        let (tool, lockfile) = match decl {
            DepsDecl::None => return None,
            DepsDecl::Python { lockfile, .. } | DepsDecl::Node { lockfile, .. } => {
                (decl.tool(), lockfile.clone())
            }
        };
        let mut grants: BTreeSet<Grant> = default_hosts(tool)
            .iter()
            .map(|h| Grant::new(h, 443))
            .collect();
        grants.extend(https_hosts(lockfile_text));
        Some(Install {
            tool,
            lockfile,
            grants: grants.into_iter().collect(),
        })
    }

    /// The commands, run in order in [`APP_DIR`].
    pub fn commands(&self) -> Vec<Vec<String>> {
        let v = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        match self.tool {
            // uv.lock: the project's own environment in /app/.venv,
            // without dev dependencies.
            DepsTool::Uv if self.lockfile.ends_with("uv.lock") => {
                vec![v(&["uv", "sync", "--frozen", "--no-dev"])]
            }
            // A requirements-style lockfile (pip-tools or `uv pip compile`).
            DepsTool::Uv | DepsTool::PipTools => vec![
                v(&["uv", "venv", ".venv"]),
                v(&[
                    "uv",
                    "pip",
                    "sync",
                    "--python",
                    ".venv/bin/python",
                    &self.lockfile,
                ]),
            ],
            DepsTool::Npm => vec![v(&["npm", "ci", "--omit=dev"])],
            DepsTool::Yarn => vec![v(&[
                "yarnpkg",
                "install",
                "--frozen-lockfile",
                "--production",
                "--non-interactive",
            ])],
            DepsTool::Pnpm => vec![v(&["pnpm", "install", "--frozen-lockfile", "--prod"])],
            DepsTool::None => vec![],
        }
    }

    /// Environment of the install: the egress gate as proxy, the host CA
    /// bundle, caches under /tmp (which is not image content), and the
    /// image's own interpreter (uv never downloads one).
    pub fn env(&self, proxy_url: &str) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = [
            ("HTTPS_PROXY", proxy_url),
            ("https_proxy", proxy_url),
            ("SSL_CERT_FILE", GUEST_CA_FILE),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let more: &[(&str, &str)] = match self.tool {
            DepsTool::Uv | DepsTool::PipTools => &[
                ("UV_CACHE_DIR", "/tmp/uv-cache"),
                ("UV_PYTHON_DOWNLOADS", "never"),
                ("UV_PYTHON", "/usr/bin/python3"),
                ("UV_SYSTEM_CERTS", "1"),
                ("UV_LINK_MODE", "copy"),
                ("UV_NO_PROGRESS", "1"),
            ],
            DepsTool::Npm | DepsTool::Yarn | DepsTool::Pnpm => &[
                ("NODE_EXTRA_CA_CERTS", GUEST_CA_FILE),
                ("npm_config_cafile", GUEST_CA_FILE),
                ("npm_config_https_proxy", proxy_url),
                ("npm_config_cache", "/tmp/npm-cache"),
                ("npm_config_update_notifier", "false"),
                ("npm_config_fund", "false"),
                ("npm_config_audit", "false"),
                ("YARN_CACHE_FOLDER", "/tmp/yarn-cache"),
            ],
            DepsTool::None => &[],
        };
        env.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    /// How to list what was installed: a command whose stdout
    /// [`parse_inventory`] reads, or a file in the guest.
    pub fn inventory(&self) -> Inventory {
        match self.tool {
            DepsTool::Uv | DepsTool::PipTools => Inventory::Command(
                [
                    "uv",
                    "pip",
                    "list",
                    "--format",
                    "json",
                    "--python",
                    ".venv/bin/python",
                ]
                .map(String::from)
                .to_vec(),
            ),
            DepsTool::Npm | DepsTool::Yarn | DepsTool::Pnpm => {
                Inventory::File(format!("{APP_DIR}/node_modules/.package-lock.json"))
            }
            DepsTool::None => Inventory::None,
        }
    }

    pub fn is_python(&self) -> bool {
        matches!(self.tool, DepsTool::Uv | DepsTool::PipTools)
    }
}

pub enum Inventory {
    None,
    Command(Vec<String>),
    File(String),
}

/// `uv pip list --format json` output, or npm's hidden lockfile
/// (`node_modules/.package-lock.json`).
pub fn parse_inventory(python: bool, bytes: &[u8]) -> Result<Vec<Package>, String> {
    if python {
        let mut list: Vec<Package> =
            serde_json::from_slice(bytes).map_err(|e| format!("uv pip list output: {e}"))?;
        list.sort();
        return Ok(list);
    }
    #[derive(Deserialize)]
    struct Hidden {
        #[serde(default)]
        packages: BTreeMap<String, Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        version: Option<String>,
    }
    let hidden: Hidden = serde_json::from_slice(bytes)
        .map_err(|e| format!("node_modules/.package-lock.json: {e}"))?;
    let mut list: Vec<Package> = hidden
        .packages
        .into_iter()
        .filter_map(|(path, entry)| {
            let name = path.rsplit_once("node_modules/")?.1.to_string();
            Some(Package {
                name,
                version: entry.version?,
            })
        })
        .collect();
    list.sort();
    list.dedup();
    Ok(list)
}

/// `host:port` of every `https://` URL in `text`.
fn https_hosts(text: &str) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("https://") {
        let rest = &text[at + "https://".len()..];
        let authority: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
            .collect();
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().unwrap_or(0)),
            None => (authority.clone(), 443),
        };
        if let Ok(grant) = Grant::parse(&format!("{host}:{port}")) {
            out.insert(grant);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(lockfile: &str) -> DepsDecl {
        DepsDecl::Python {
            lockfile: lockfile.into(),
            tool: "uv".into(),
        }
    }

    #[test]
    fn grants_are_the_registries_plus_hosts_the_lockfile_names() {
        let lock = r#"source = { registry = "https://pypi.org/simple" }
wheels = [{ url = "https://files.pythonhosted.org/packages/x.whl" }]
source = { git = "https://git.example.org:8443/a/b" }
note = "see http://plain.example.org and https://*.bad"
"#;
        let install = Install::plan(&py("uv.lock"), lock).unwrap();
        let grants: Vec<String> = install.grants.iter().map(|g| g.to_string()).collect();
        assert_eq!(
            grants,
            [
                "files.pythonhosted.org:443",
                "git.example.org:8443",
                "pypi.org:443"
            ]
        );
        assert!(Install::plan(&DepsDecl::None, "").is_none());
    }

    #[test]
    fn commands_follow_the_tool_and_lockfile() {
        let uv = Install::plan(&py("uv.lock"), "").unwrap();
        assert_eq!(uv.commands(), [["uv", "sync", "--frozen", "--no-dev"]]);
        let req = Install::plan(&py("requirements.lock"), "").unwrap();
        assert_eq!(req.commands()[1][..3], ["uv", "pip", "sync"]);
        let npm = Install::plan(
            &DepsDecl::Node {
                lockfile: "package-lock.json".into(),
                tool: "npm".into(),
            },
            "",
        )
        .unwrap();
        assert_eq!(npm.commands(), [["npm", "ci", "--omit=dev"]]);
        assert_eq!(npm.grants, [Grant::new("registry.npmjs.org", 443)]);
        let env = npm.env("http://10.0.2.100:3128");
        assert_eq!(env["HTTPS_PROXY"], "http://10.0.2.100:3128");
        assert_eq!(env["NODE_EXTRA_CA_CERTS"], GUEST_CA_FILE);
    }

    #[test]
    fn inventories_parse() {
        let list = parse_inventory(
            true,
            br#"[{"name":"humanize","version":"4.17.0"},{"name":"anyio","version":"4.0.0"}]"#,
        )
        .unwrap();
        assert_eq!(list[0].name, "anyio");
        let node = parse_inventory(
            false,
            br#"{"name":"x","packages":{"node_modules/a":{"version":"1.0.0"},"node_modules/a/node_modules/@s/b":{"version":"2.0.0"},"":{"name":"x"}}}"#,
        )
        .unwrap();
        assert_eq!(
            node,
            [
                Package {
                    name: "@s/b".into(),
                    version: "2.0.0".into()
                },
                Package {
                    name: "a".into(),
                    version: "1.0.0".into()
                },
            ]
        );
        assert!(parse_inventory(true, b"nope").is_err());
    }
}
