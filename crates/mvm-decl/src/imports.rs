//! Which local names refer to the SDK, built per file from its import
//! statements. A helper is recognised only when the name it is called
//! through resolves here: `import mvm as m` makes `m.app` the SDK's `app`,
//! `from mvm import python_image as pi` makes `pi` its `python_image`, while
//! a local function that happens to be called `app` is nothing.

use std::collections::BTreeMap;

/// The local names bound to the SDK module and to its members.
#[derive(Debug, Default, Clone)]
pub struct SdkNames {
    /// Names bound to the module itself (`mvm`, `m`).
    modules: BTreeMap<String, ()>,
    /// Local name → the SDK export it names, as exported (`python_image`,
    /// `pythonImage`, `Sandbox`).
    members: BTreeMap<String, String>,
}

/// A callee path resolved through the SDK's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The SDK export the path starts from (`app`, `pythonImage`, `Sandbox`).
    pub export: String,
    /// Segments after the export (`Sandbox.create` → `["create"]`).
    pub rest: usize,
}

impl Resolved {
    /// The export when the path names it directly; `None` for `m.app.x`,
    /// `Sandbox.create`, ... (TypeScript then maps camelCase to the helper.)
    pub fn direct(&self) -> Option<&str> {
        (self.rest == 0).then_some(self.export.as_str())
    }
}

impl SdkNames {
    pub fn bind_module(&mut self, local: &str) {
        self.members.remove(local);
        self.modules.insert(local.to_string(), ());
    }

    pub fn bind_member(&mut self, local: &str, export: &str) {
        self.modules.remove(local);
        self.members.insert(local.to_string(), export.to_string());
    }

    /// `local` now names something else (a `def`, an assignment, another import).
    pub fn unbind(&mut self, local: &str) {
        self.modules.remove(local);
        self.members.remove(local);
    }

    pub fn is_module(&self, local: &str) -> bool {
        self.modules.contains_key(local)
    }

    /// The SDK export `local` is bound to, if any.
    pub fn member(&self, local: &str) -> Option<&str> {
        self.members.get(local).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.modules.is_empty() && self.members.is_empty()
    }

    /// Resolves a dotted callee path (`["m", "python_image"]`, `["pi"]`).
    pub fn resolve<S: AsRef<str>>(&self, path: &[S]) -> Option<Resolved> {
        let (first, tail) = path.split_first()?;
        let first = first.as_ref();
        if self.is_module(first) {
            let (export, rest) = tail.split_first()?;
            return Some(Resolved {
                export: export.as_ref().to_string(),
                rest: rest.len(),
            });
        }
        self.member(first).map(|export| Resolved {
            export: export.to_string(),
            rest: tail.len(),
        })
    }
}

/// The path as written, for messages: `m.localPath`.
pub fn written<S: AsRef<str>>(path: &[S]) -> String {
    path.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(".")
}

/// A callee the user clearly meant as the SDK's (`mvm.app`, `mvm.secret`)
/// whose root is not imported in this file: the hint says what to import.
pub fn unimported_mvm<S: AsRef<str>>(names: &SdkNames, path: &[S]) -> bool {
    path.len() == 2 && path[0].as_ref() == "mvm" && !names.is_module("mvm")
}

/// Where a file first uses the SDK's `app` and `Sandbox`, by byte offset
/// (found by the Python and TypeScript walks alike). `app` also counts the
/// module itself handed around, which may reach it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Uses {
    pub app: Option<usize>,
    pub sandbox: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_follows_the_bindings() {
        let mut n = SdkNames::default();
        n.bind_module("m");
        n.bind_member("pi", "python_image");
        n.bind_member("declare", "app");
        fn r(n: &SdkNames, p: &[&str]) -> Option<String> {
            n.resolve(p).and_then(|r| r.direct().map(str::to_string))
        }
        assert_eq!(r(&n, &["m", "app"]).as_deref(), Some("app"));
        assert_eq!(r(&n, &["m", "localPath"]).as_deref(), Some("localPath"));
        assert_eq!(r(&n, &["pi"]).as_deref(), Some("python_image"));
        assert_eq!(r(&n, &["declare"]).as_deref(), Some("app"));
        assert_eq!(r(&n, &["mvm", "app"]), None);
        assert_eq!(r(&n, &["app"]), None);
        assert_eq!(n.resolve(&["m", "Sandbox", "create"]).unwrap().rest, 1);
        n.unbind("declare");
        assert_eq!(r(&n, &["declare"]), None);
    }
}
