//! Which declaration language a file is written in, by its extension: the
//! one answer for both this crate (which parser reads it) and the CLI's
//! input classification (whether a path is a declaration at all). Kept in
//! its own module so the entry point ([`crate::compile_declaration`]) and
//! the lowering ([`crate::lower`]) both use it without importing each other.

use std::path::Path;

/// The language of a declaration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Python,
    TypeScript,
}

impl Lang {
    /// The language as compile reports name it (`python:app.py`, `typescript:app.ts`).
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::TypeScript => "typescript",
        }
    }
}

/// `.py` → Python; `.ts`, `.mts` → TypeScript; anything else `None`.
///
/// `.cts` (CommonJS TypeScript) is deliberately not a declaration: the
/// guest's Node function runner loads only `.mjs`, `.js`, `.cjs`, `.mts` and
/// `.ts` modules (`mvm-agent/runners/node_runner.mjs`), and the TypeScript SDK
/// is an ES module only (no `require` export), so a `.cts` declaration's
/// function entrypoint could not run. `mvmctl compile` has never accepted it.
pub fn lang_for_path(path: &Path) -> Option<Lang> {
    match path.extension()?.to_str()? {
        "py" => Some(Lang::Python),
        "ts" | "mts" => Some(Lang::TypeScript),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declaration_extensions() {
        for (path, lang) in [
            ("app.py", Some(Lang::Python)),
            ("src/app.ts", Some(Lang::TypeScript)),
            ("app.mts", Some(Lang::TypeScript)),
            ("app.cts", None),
            ("app.PY", None),
            ("app.d.json", None),
            ("ts", None),
            ("-", None),
        ] {
            assert_eq!(lang_for_path(Path::new(path)), lang, "{path}");
        }
        assert_eq!(Lang::Python.as_str(), "python");
        assert_eq!(Lang::TypeScript.as_str(), "typescript");
    }
}
