//! Whose directory a bundle finding is about: the app's source or one of
//! its addons. The rules are the same for both; the JSON pointer and the
//! words of messages and hints differ, so a finding names what the user
//! wrote (`source.path`, or an addon's `path`) and suggests what they can
//! change (an app's source has exclude globs, an addon's directory has none).

use mvm_ir::text::escape_control;

use super::SOURCE_POINTER;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    App,
    /// The addon at `/apps/0/addons/<index>`.
    Addon {
        index: usize,
        name: &'a str,
    },
}

impl Owner<'_> {
    /// Where walk findings point: `/apps/0/source` or `/apps/0/addons/N/source`.
    pub fn source_pointer(&self) -> String {
        match self {
            Owner::App => SOURCE_POINTER.to_string(),
            Owner::Addon { index, .. } => format!("/apps/0/addons/{index}/source"),
        }
    }

    /// Where findings about the directory itself point.
    pub fn path_pointer(&self) -> String {
        format!("{}/path", self.source_pointer())
    }

    /// The path as the user wrote it, named: "source.path `app`", "the path
    /// `addons/tools` of addon `tools`".
    pub(super) fn field(&self, path: &str) -> String {
        let path = escape_control(path);
        match self {
            Owner::App => format!("source.path `{path}`"),
            Owner::Addon { name, .. } => format!("the path `{path}` of addon `{name}`"),
        }
    }

    /// What findings of the walk call the walked directory.
    pub(super) fn root_name(&self) -> &'static str {
        match self {
            Owner::App => "the source root",
            Owner::Addon { .. } => "the addon's directory",
        }
    }

    /// The hint of a file the walk cannot bundle.
    pub(super) fn unreadable_hint(&self) -> &'static str {
        match self {
            Owner::App => {
                "remove it from the source directory or add it to the source's exclude globs"
            }
            Owner::Addon { .. } => {
                "remove it from the addon's directory (an addon is bundled whole, without include or exclude globs)"
            }
        }
    }

    /// The hint of a file only its owner may read.
    pub(super) fn private_hint(&self) -> &'static str {
        match self {
            Owner::App => {
                "exclude it if it is a secret (the workload gets secrets through mvm.secret references); \
                 otherwise make it readable to others (chmod o+r) to show it is meant to be shared"
            }
            Owner::Addon { .. } => {
                "remove it from the addon's directory if it is a secret (the workload gets secrets through \
                 mvm.secret references); otherwise make it readable to others (chmod o+r) to show it is meant to be shared"
            }
        }
    }

    /// The hint of a bundle over a cap.
    pub(super) fn too_large_hint(&self) -> &'static str {
        match self {
            Owner::App => super::limits::HINT,
            Owner::Addon { .. } => {
                "keep only what the addon's hooks need in its directory (an addon is bundled whole); \
                 large data belongs in a volume, not the source bundle"
            }
        }
    }
}
