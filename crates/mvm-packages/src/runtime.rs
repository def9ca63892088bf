//! Which language runtime a package name or a program stands for, by the
//! names the table follows (`python3`, `python313`; `nodejs`, `nodejs_22`),
//! whether or not this host can build that version. The compiler asks it to
//! tell "this function cannot run in its image" apart from "this image
//! cannot be built" (the resolver says that).

use crate::table::{Provision, Suite, TABLE, lookup};

/// A language runtime that functions and commands run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Runtime {
    Python,
    Node,
}

/// What to declare for a runtime: the table's package and the version the
/// SDK helpers take for it (`python313` is `python_image(python="3.13")`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub package: &'static str,
    pub version: String,
}

impl Runtime {
    /// As people say it: `Python`, `Node`.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Python => "Python",
            Runtime::Node => "Node",
        }
    }

    /// The runtime a package name provides: any CPython name (`python`,
    /// `python3`, `python312`, `python3Full`, ...) or Node name (`nodejs`,
    /// `nodejs_22`, `nodejs-slim_22`), in the table or not.
    pub fn of_package(name: &str) -> Option<Runtime> {
        if let Some(rest) = name.strip_prefix("python") {
            let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            return matches!(rest, "" | "Full" | "Minimal").then_some(Runtime::Python);
        }
        let rest = name.strip_prefix("nodejs")?;
        let rest = rest.strip_prefix("-slim").unwrap_or(rest);
        let digits = match rest.strip_prefix('_') {
            Some(d) if !d.is_empty() => d,
            Some(_) => return None,
            None => rest,
        };
        digits
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then_some(Runtime::Node)
    }

    /// The runtime a program runs on, by its file name: `python`,
    /// `python3`, `python3.N` (also as `/usr/bin/python3` or a venv's
    /// `.venv/bin/python`), `node`, `nodejs`.
    pub fn of_program(argv0: &str) -> Option<Runtime> {
        let name = argv0.rsplit('/').next().unwrap_or(argv0);
        match name {
            "python" | "python3" => Some(Runtime::Python),
            "node" | "nodejs" => Some(Runtime::Node),
            _ => name
                .strip_prefix("python3.")
                .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
                .map(|_| Runtime::Python),
        }
    }

    /// The package the table offers for this runtime that fits next to
    /// `packages`: from the Debian release they pin, if they pin one, else
    /// the SDK helpers' default version (Python 3.13, Node 22).
    pub fn suggestion(self, packages: &[String]) -> Suggestion {
        let preferred = match self {
            Runtime::Python => "python313",
            Runtime::Node => "nodejs_22",
        };
        let pinned = packages.iter().find_map(|p| suite_of(p));
        let fits = |name: &str| match (pinned, lookup(name).map(|e| e.provision)) {
            (Some(s), Some(Provision::Debian { suite: Some(t), .. })) => s == t,
            _ => true,
        };
        let package = if fits(preferred) {
            preferred
        } else {
            TABLE
                .iter()
                .map(|e| e.name)
                .find(|n| versioned(n).is_some_and(|(r, _)| r == self) && fits(n))
                .unwrap_or(preferred)
        };
        let version = versioned(package).map(|(_, v)| v).unwrap_or_default();
        Suggestion { package, version }
    }
}

/// The Debian release a table package pins, if any.
fn suite_of(name: &str) -> Option<Suite> {
    match lookup(name)?.provision {
        Provision::Debian { suite, .. } => suite,
        Provision::Wheel(_) => None,
    }
}

/// `python312` → (Python, "3.12"); `nodejs_16` → (Node, "16"): a package
/// name that asks for one version of a language.
pub(crate) fn versioned(name: &str) -> Option<(Runtime, String)> {
    if let Some(digits) = name
        .strip_prefix("python")
        .filter(|d| d.len() >= 2 && d.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some((
            Runtime::Python,
            format!("{}.{}", &digits[..1], &digits[1..]),
        ));
    }
    name.strip_prefix("nodejs_")
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .map(|d| (Runtime::Node, d.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn package_names_by_the_naming_rule() {
        for p in ["python3", "python311", "python312", "python", "python3Full"] {
            assert_eq!(Runtime::of_package(p), Some(Runtime::Python), "{p}");
        }
        for p in ["nodejs", "nodejs_22", "nodejs_16", "nodejs-slim_22"] {
            assert_eq!(Runtime::of_package(p), Some(Runtime::Node), "{p}");
        }
        for p in [
            "python3Packages.numpy",
            "python313Packages.flask",
            "uv",
            "nodejs_",
            "nodejsx",
            "curl",
        ] {
            assert_eq!(Runtime::of_package(p), None, "{p}");
        }
    }

    #[test]
    fn programs_by_file_name() {
        for p in [
            "python",
            "python3",
            "python3.11",
            "/usr/bin/python3",
            ".venv/bin/python",
        ] {
            assert_eq!(Runtime::of_program(p), Some(Runtime::Python), "{p}");
        }
        for p in ["node", "/usr/local/bin/node", "nodejs"] {
            assert_eq!(Runtime::of_program(p), Some(Runtime::Node), "{p}");
        }
        for p in [
            "sh",
            "uv",
            "npm",
            "python3.",
            "python3-config",
            "pythonista",
            "",
        ] {
            assert_eq!(Runtime::of_program(p), None, "{p}");
        }
    }

    #[test]
    fn suggestions_fit_the_release_the_image_pins() {
        let s = Runtime::Python.suggestion(&[]);
        assert_eq!((s.package, s.version.as_str()), ("python313", "3.13"));
        let s = Runtime::Python.suggestion(&names(&["nodejs_18", "curl"]));
        assert_eq!((s.package, s.version.as_str()), ("python311", "3.11"));
        let s = Runtime::Node.suggestion(&names(&["python311"]));
        assert_eq!((s.package, s.version.as_str()), ("nodejs_22", "22"));
        let s = Runtime::Node.suggestion(&names(&["python312"]));
        assert_eq!((s.package, s.version.as_str()), ("nodejs_22", "22"));
    }
}
