//! Dependency installation from the declared lockfile, as run inside the
//! builder microVM: the commands per tool, their environment, the egress
//! grants they get, and how the installed packages are read back for
//! image.lock.

mod sources;

use std::collections::{BTreeMap, BTreeSet};

use mvm_egress::Grant;
use mvm_ir::validate::host::host_class;
use serde::{Deserialize, Serialize};

use crate::table::DepsTool;
use mvm_launch::Dependencies;

/// Where the workload's source lives in the guest; installs run here.
pub const APP_DIR: &str = "/app";
/// The host's CA bundle, copied into the builder's tmpfs for the install
/// only (never into the image): TLS-inspecting egress proxies re-sign
/// registry traffic with a CA that only the host trusts.
pub const GUEST_CA_FILE: &str = "/run/mvm/host-ca.pem";

/// The pnpm that installs a `lockfileVersion: '9.0'` lockfile, and the
/// classic yarn for `# yarn lockfile v1`: run with `npm exec` from the
/// registry, pinned exactly, so the installer is a pinned input too.
pub const PNPM: &str = "pnpm@10.34.9";
pub const YARN: &str = "yarn@1.22.22";

/// Lists every package under `/app/node_modules` as `[{name, version}]`,
/// whichever tool laid it out (npm and yarn nest, pnpm keeps real
/// directories under `.pnpm/` and links to them, which are skipped).
const NODE_INVENTORY: &str = r#"const fs = require("fs"), path = require("path");
const seen = new Set();
(function walk(dir, depth) {
  if (depth > 40) return;
  let entries;
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const p = path.join(dir, e.name);
    const parent = path.basename(dir), grand = path.basename(path.dirname(dir));
    const isPackage = (parent === "node_modules" && !e.name.startsWith(".") && !e.name.startsWith("@"))
      || (parent.startsWith("@") && grand === "node_modules");
    if (isPackage) {
      try {
        const j = JSON.parse(fs.readFileSync(path.join(p, "package.json"), "utf8"));
        if (j.name && j.version) seen.add(j.name + "\0" + j.version);
      } catch {}
    }
    walk(p, depth + 1);
  }
})("node_modules", 0);
process.stdout.write(JSON.stringify([...seen].map((s) => { const [name, version] = s.split("\0"); return { name, version }; })));
"#;

/// Registries each tool reaches by default; the hosts of the https URLs
/// the lockfile's structured fields name are added (see [`sources`]).
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
    /// Of the lockfile as bundled, for image.lock.
    pub lockfile_sha256: String,
    /// What the lockfile needs: the tool's registries and the hosts its
    /// structured fields name (recorded in image.lock).
    pub grants: Vec<Grant>,
    /// The operator's `--allow-private-egress` destinations: granted too,
    /// and the gate may connect to them although they are (or resolve to)
    /// loopback, private, link-local or metadata addresses. Not recorded
    /// in image.lock: they are the operator's, not the image's.
    pub allow_private: Vec<Grant>,
}

/// Adds pip to the venv from the wheel Debian's python3-venv bundles.
const ENSUREPIP: &[&str] = &[".venv/bin/python", "-m", "ensurepip", "--default-pip"];

impl Install {
    /// The install for a declaration, or `None` when nothing is declared.
    /// `lockfile_text` is the lockfile as bundled; `allow_private` the
    /// operator's `--allow-private-egress` destinations. A lockfile format
    /// the pinned installer cannot read is an error saying what to do, and
    /// so is a lockfile URL whose host is loopback, private, link-local,
    /// metadata, ... in any spelling, unless the operator allowed exactly it.
    pub fn plan(
        decl: &Dependencies,
        lockfile_text: &str,
        allow_private: &[Grant],
    ) -> Result<Option<Install>, String> {
        let (tool, lockfile) = match decl {
            Dependencies::None => return Ok(None),
            Dependencies::Python { lockfile, .. } | Dependencies::Node { lockfile, .. } => {
                (crate::compiled::deps_tool(decl), lockfile.clone())
            }
        };
        check_format(tool, &lockfile, lockfile_text)?;
        let mut grants: BTreeSet<Grant> = default_hosts(tool)
            .iter()
            .map(|h| Grant::new(h, 443))
            .collect();
        let mut refused = Vec::new();
        for named in sources::urls(tool, &lockfile, lockfile_text)? {
            let Some(grant) = url_grant(&named.url) else {
                continue; // not https (the gate relays nothing else) or no host
            };
            if let Some(class) = host_class(grant.bare_host())
                && !allow_private.contains(&grant)
            {
                refused.push(format!(
                    "{}: names {grant}, {class}; a lockfile cannot grant the builder such a destination. \
                     If it is your own service, allow exactly it: `mvmctl build --allow-private-egress {grant}`",
                    named.at
                ));
                continue;
            }
            grants.insert(grant);
        }
        if !refused.is_empty() {
            return Err(refused.join("\n"));
        }
        Ok(Some(Install {
            tool,
            lockfile,
            lockfile_sha256: crate::digest::sha256_bytes(lockfile_text.as_bytes()),
            grants: grants.into_iter().collect(),
            allow_private: allow_private.to_vec(),
        }))
    }

    /// The commands, run in order in [`APP_DIR`].
    pub fn commands(&self) -> Vec<Vec<String>> {
        let v = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        match self.tool {
            // uv.lock: the project's own environment in /app/.venv,
            // without dev dependencies.
            // Then pip in that venv, from Debian's bundled wheel (no
            // network): users expect `pip` where a venv exists.
            DepsTool::Uv if self.lockfile.ends_with("uv.lock") => {
                vec![v(&["uv", "sync", "--frozen", "--no-dev"]), v(ENSUREPIP)]
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
                v(ENSUREPIP),
            ],
            DepsTool::Npm => vec![v(&["npm", "ci", "--omit=dev"])],
            DepsTool::Yarn => vec![v(&[
                "npm",
                "exec",
                "--yes",
                YARN,
                "--",
                "install",
                "--frozen-lockfile",
                "--production",
                "--non-interactive",
            ])],
            DepsTool::Pnpm => vec![v(&[
                "npm",
                "exec",
                "--yes",
                PNPM,
                "--",
                "install",
                "--frozen-lockfile",
                "--prod",
            ])],
            DepsTool::None => vec![],
        }
    }

    /// Environment of the install: the egress gate as proxy, the host CA
    /// bundle, caches under /tmp (which is not image content), and the
    /// image's own interpreter (uv never downloads one).
    pub fn env(&self, proxy_url: &str) -> BTreeMap<String, String> {
        // Reproducible output (docs/images.md): Python caches compiled
        // while installing (pip's, from ensurepip) are hash-checked when
        // SOURCE_DATE_EPOCH is set, and a fixed hash seed keeps the order
        // of set constants in them the same from run to run.
        let epoch = crate::build::source_date_epoch()
            .unwrap_or(crate::seal::DEFAULT_EPOCH)
            .to_string();
        let mut env: BTreeMap<String, String> = [
            ("HTTPS_PROXY", proxy_url),
            ("https_proxy", proxy_url),
            ("SSL_CERT_FILE", GUEST_CA_FILE),
            ("SOURCE_DATE_EPOCH", epoch.as_str()),
            ("PYTHONHASHSEED", "0"),
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
                // Well below the gate's cap on connections per microVM
                // (mvm_egress::MAX_CONNECTIONS); past it the gate refuses.
                ("UV_CONCURRENT_DOWNLOADS", "16"),
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
                // npm's sockets and pnpm's downloads, below the gate's cap.
                ("npm_config_maxsockets", "16"),
                ("npm_config_network_concurrency", "16"),
            ],
            DepsTool::None => &[],
        };
        env.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    /// A command, run in [`APP_DIR`], that prints what was installed as
    /// `[{"name", "version"}]` for [`parse_inventory`].
    pub fn inventory(&self) -> Option<Vec<String>> {
        let v = |args: &[&str]| Some(args.iter().map(|a| a.to_string()).collect());
        match self.tool {
            DepsTool::Uv | DepsTool::PipTools => v(&[
                "uv",
                "pip",
                "list",
                "--format",
                "json",
                "--python",
                ".venv/bin/python",
            ]),
            DepsTool::Npm | DepsTool::Yarn | DepsTool::Pnpm => v(&["node", "-e", NODE_INVENTORY]),
            DepsTool::None => None,
        }
    }
}

/// `[{"name", "version", ...}]`, sorted and without repeats.
pub fn parse_inventory(bytes: &[u8]) -> Result<Vec<Package>, String> {
    let mut list: Vec<Package> = serde_json::from_slice(bytes)
        .map_err(|e| format!("reading the installed package list: {e}"))?;
    list.sort();
    list.dedup();
    Ok(list)
}

/// Refuses lockfiles the pinned installers would not install as locked.
fn check_format(tool: DepsTool, lockfile: &str, text: &str) -> Result<(), String> {
    match tool {
        DepsTool::Pnpm => {
            let version = text
                .lines()
                .find_map(|l| l.strip_prefix("lockfileVersion:"))
                .map(|v| v.trim().trim_matches(|c| c == '\'' || c == '"'))
                .unwrap_or("");
            if !version.starts_with("9.") {
                return Err(format!(
                    "`{lockfile}` has lockfileVersion `{version}`; the builder installs with {PNPM}, \
                     which needs lockfileVersion 9.x: regenerate it with `pnpm install --lockfile-only` (pnpm 9 or later)"
                ));
            }
        }
        DepsTool::Yarn if !text.contains("# yarn lockfile v1") => {
            return Err(format!(
                "`{lockfile}` is not a classic yarn lockfile (`# yarn lockfile v1`); the builder installs with {YARN}. \
                 Use npm or pnpm for Yarn Berry projects"
            ));
        }
        _ => {}
    }
    Ok(())
}

/// The `host:port` an `https://` (or `git+https://`) URL connects to;
/// `None` for other schemes and hosts that are no grant (wildcards, ...).
fn url_grant(url: &str) -> Option<Grant> {
    let lower = url.get(..12).unwrap_or(url).to_ascii_lowercase();
    let skip = ["https://", "git+https://"]
        .iter()
        .find(|p| lower.starts_with(*p))?
        .len();
    let rest = &url[skip..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Credentials (`user:token@host`) are not part of the destination.
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = match authority.rfind(']') {
        Some(end) => (&authority[..=end], authority[end + 1..].strip_prefix(':')),
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let port: u16 = match port {
        None | Some("") => 443,
        Some(p) => p.parse().ok()?,
    };
    Grant::parse(&format!("{host}:{port}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(lockfile: &str) -> Dependencies {
        Dependencies::Python {
            lockfile: lockfile.into(),
            tool: mvm_launch::PythonTool::Uv,
        }
    }

    #[test]
    fn grants_are_the_registries_plus_hosts_the_lockfile_names() {
        let lock = r#"version = 1
[[package]]
name = "a"
source = { registry = "https://pypi.org/simple" }
wheels = [{ url = "https://files.pythonhosted.org/packages/x.whl" }]

[[package]]
name = "b"
source = { git = "https://git.example.org:8443/a/b" }
sdist = { url = "http://plain.example.org/b.tar.gz" }
wheels = [{ url = "https://*.bad/x.whl" }]
"#;
        let install = Install::plan(&py("uv.lock"), lock, &[]).unwrap().unwrap();
        let grants: Vec<String> = install.grants.iter().map(|g| g.to_string()).collect();
        assert_eq!(
            grants,
            [
                "files.pythonhosted.org:443",
                "git.example.org:8443",
                "pypi.org:443"
            ]
        );
        assert_eq!(
            install.lockfile_sha256,
            crate::digest::sha256_bytes(lock.as_bytes()),
            "image.lock names the lockfile that was installed"
        );
        assert!(
            Install::plan(&Dependencies::None, "", &[])
                .unwrap()
                .is_none()
        );
    }

    /// The issue's attack: a lockfile that mentions the host's Docker API
    /// and the metadata service in comments and free text. Only structured
    /// source fields grant anything.
    #[test]
    fn urls_outside_the_structured_fields_are_no_grant() {
        let lock = r#"version = 1
# https://127.0.0.1:2375/containers/create
[[package]]
name = "a"
description = "https://169.254.169.254:80/latest/meta-data"
source = { registry = "https://pypi.org/simple" }
"#;
        let install = Install::plan(&py("uv.lock"), lock, &[]).unwrap().unwrap();
        assert_eq!(
            install.grants,
            [
                Grant::new("files.pythonhosted.org", 443),
                Grant::new("pypi.org", 443)
            ]
        );
        let yarn = Dependencies::Node {
            lockfile: "yarn.lock".into(),
            tool: mvm_launch::NodeTool::Yarn,
        };
        let lock = "# yarn lockfile v1\n# https://127.0.0.1:2375\n";
        let install = Install::plan(&yarn, lock, &[]).unwrap().unwrap();
        assert!(
            install
                .grants
                .iter()
                .all(|g| g.port == 443 && !g.host.starts_with("127.")),
            "{:?}",
            install.grants
        );
    }

    /// A lockfile whose structured source is the host's loopback (in any
    /// spelling), a private address or the metadata service is a build
    /// error naming the place and the operator's way out; with the
    /// operator's permission for exactly that destination it is granted.
    #[test]
    fn a_private_lockfile_source_is_an_error_unless_the_operator_allows_it() {
        for (url, grant) in [
            ("https://127.0.0.1:2375/simple", "127.0.0.1:2375"),
            ("https://2130706433:2375/simple", "2130706433:2375"),
            ("https://0x7f.1:2375/simple", "0x7f.1:2375"),
            ("https://[::1]:3141/simple", "[::1]:3141"),
            (
                "https://user:pw@169.254.169.254/simple",
                "169.254.169.254:443",
            ),
            ("https://localhost:3141/simple", "localhost:3141"),
            ("https://10.1.2.3/simple", "10.1.2.3:443"),
        ] {
            let lock = format!(
                "version = 1\n[[package]]\nname = \"a\"\nsource = {{ registry = \"{url}\" }}\n"
            );
            let err = Install::plan(&py("uv.lock"), &lock, &[]).unwrap_err();
            assert!(
                err.starts_with("uv.lock:4:23 (package `a`, source.registry): "),
                "{err}"
            );
            assert!(
                err.contains(&format!("names {grant}, "))
                    && err.contains(&format!("`mvmctl build --allow-private-egress {grant}`")),
                "{err}"
            );
            let allowed = Grant::parse(grant).unwrap();
            let install = Install::plan(&py("uv.lock"), &lock, std::slice::from_ref(&allowed))
                .unwrap()
                .unwrap();
            assert!(install.grants.contains(&allowed), "{url}");
            assert_eq!(install.allow_private, [allowed]);
        }
    }

    /// The repository's example lockfiles, as their tools wrote them,
    /// parse and grant only their registries.
    #[test]
    fn the_example_lockfiles_parse_and_grant_their_registries() {
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let node = |lockfile: &str, tool| Dependencies::Node {
            lockfile: lockfile.into(),
            tool,
        };
        use mvm_launch::NodeTool;
        for (path, decl, want) in [
            (
                "python/deps-app/uv.lock",
                py("uv.lock"),
                &["files.pythonhosted.org:443", "pypi.org:443"][..],
            ),
            (
                "ir/python-tool/uv.lock",
                py("uv.lock"),
                &["files.pythonhosted.org:443", "pypi.org:443"],
            ),
            (
                "node/deps-app/package-lock.json",
                node("package-lock.json", NodeTool::Npm),
                &["registry.npmjs.org:443"],
            ),
            (
                "ir/node-service/package-lock.json",
                node("package-lock.json", NodeTool::Npm),
                &["registry.npmjs.org:443"],
            ),
            (
                "node/pnpm-app/pnpm-lock.yaml",
                node("pnpm-lock.yaml", NodeTool::Pnpm),
                &["registry.npmjs.org:443"],
            ),
        ] {
            let text = std::fs::read_to_string(examples.join(path)).unwrap();
            let install = Install::plan(&decl, &text, &[])
                .unwrap_or_else(|e| panic!("{path}: {e}"))
                .unwrap();
            let grants: Vec<String> = install.grants.iter().map(|g| g.to_string()).collect();
            assert_eq!(grants, want, "{path}");
        }
    }

    #[test]
    fn url_hosts_and_ports() {
        let g = |u: &str| url_grant(u).map(|g| g.to_string());
        assert_eq!(
            g("https://pypi.org/simple").as_deref(),
            Some("pypi.org:443")
        );
        assert_eq!(g("HTTPS://PyPI.org:8443").as_deref(), Some("pypi.org:8443"));
        assert_eq!(
            g("git+https://tok@git.example.org/x.git#1").as_deref(),
            Some("git.example.org:443")
        );
        assert_eq!(g("https://[::1]/x").as_deref(), Some("[::1]:443"));
        assert_eq!(
            g("https://a.example?x=@evil.example").as_deref(),
            Some("a.example:443")
        );
        for none in [
            "http://pypi.org/",
            "git+ssh://git@github.com/x",
            "file:../x",
            "https://",
            "https://*.x/",
        ] {
            assert_eq!(g(none), None, "{none}");
        }
    }

    #[test]
    fn commands_follow_the_tool_and_lockfile() {
        let uv = Install::plan(&py("uv.lock"), "", &[]).unwrap().unwrap();
        assert_eq!(uv.commands()[0], ["uv", "sync", "--frozen", "--no-dev"]);
        assert_eq!(uv.commands()[1], ENSUREPIP);
        let req = Install::plan(&py("requirements.lock"), "", &[])
            .unwrap()
            .unwrap();
        assert_eq!(req.commands()[1][..3], ["uv", "pip", "sync"]);
        let npm = Install::plan(
            &Dependencies::Node {
                lockfile: "package-lock.json".into(),
                tool: mvm_launch::NodeTool::Npm,
            },
            "{}",
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(npm.commands(), [["npm", "ci", "--omit=dev"]]);
        assert_eq!(npm.grants, [Grant::new("registry.npmjs.org", 443)]);
        let env = npm.env("http://10.0.2.100:3128");
        assert_eq!(env["HTTPS_PROXY"], "http://10.0.2.100:3128");
        assert_eq!(env["NODE_EXTRA_CA_CERTS"], GUEST_CA_FILE);
    }

    #[test]
    fn pnpm_and_yarn_run_pinned_and_check_the_lockfile_format() {
        let node = |tool: &str| Dependencies::Node {
            lockfile: "x.lock".into(),
            tool: match tool {
                "pnpm" => mvm_launch::NodeTool::Pnpm,
                "yarn" => mvm_launch::NodeTool::Yarn,
                _ => mvm_launch::NodeTool::Npm,
            },
        };
        let pnpm = Install::plan(&node("pnpm"), "lockfileVersion: '9.0'\n", &[])
            .unwrap()
            .unwrap();
        assert_eq!(pnpm.commands()[0][..4], ["npm", "exec", "--yes", PNPM]);
        let err = Install::plan(&node("pnpm"), "lockfileVersion: '6.0'\n", &[]).unwrap_err();
        assert!(err.contains("lockfileVersion `6.0`"), "{err}");
        let yarn = Install::plan(&node("yarn"), "# yarn lockfile v1\n", &[])
            .unwrap()
            .unwrap();
        assert_eq!(yarn.commands()[0][3], YARN);
        assert!(Install::plan(&node("yarn"), "__metadata:\n  version: 8\n", &[]).is_err());
        assert_eq!(yarn.inventory().unwrap()[..2], ["node", "-e"]);
    }

    #[test]
    fn inventories_parse_sorted_without_repeats() {
        let list = parse_inventory(
            br#"[{"name":"humanize","version":"4.17.0"},{"name":"anyio","version":"4.0.0"},{"name":"anyio","version":"4.0.0"}]"#,
        )
        .unwrap();
        assert_eq!(
            list,
            [
                Package {
                    name: "anyio".into(),
                    version: "4.0.0".into()
                },
                Package {
                    name: "humanize".into(),
                    version: "4.17.0".into()
                },
            ]
        );
        assert!(parse_inventory(b"nope").is_err());
    }
}
