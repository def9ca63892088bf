//! Include/exclude globs of a `local_path` source.
//!
//! Globs are matched against paths relative to the source root with `/`
//! separators. `*` and `?` stay within one path component, `**` crosses
//! them. A glob that matches a directory selects (include) or drops
//! (exclude) everything beneath it, so `include: ["src"]` means the whole
//! `src/` tree. A leading `./` is ignored.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use mvm_ir::{Code, Finding};

use super::SOURCE_POINTER;

#[derive(Debug)]
pub struct Selector {
    include: GlobSet,
    exclude: GlobSet,
}

impl Selector {
    pub fn new(include: &[String], exclude: &[String]) -> Result<Selector, Vec<Finding>> {
        let mut findings = Vec::new();
        let include = build(include, "include", &mut findings);
        let exclude = build(exclude, "exclude", &mut findings);
        if findings.is_empty() {
            Ok(Selector { include, exclude })
        } else {
            Err(findings)
        }
    }

    /// Whether an include glob matches `rel` itself.
    pub fn include_matches(&self, rel: &str) -> bool {
        self.include.is_match(rel)
    }

    /// Whether an exclude glob matches `rel` itself.
    pub fn exclude_matches(&self, rel: &str) -> bool {
        self.exclude.is_match(rel)
    }
}

fn build(patterns: &[String], field: &str, findings: &mut Vec<Finding>) -> GlobSet {
    let mut set = GlobSetBuilder::new();
    for (i, pattern) in patterns.iter().enumerate() {
        match glob(pattern) {
            Ok(g) => {
                set.add(g);
            }
            Err(e) => findings.push(Finding::new(
                Code::EInvalidValue,
                format!("{SOURCE_POINTER}/{field}/{i}"),
                format!("`{pattern}` is not a valid glob: {}", e.kind()),
                "use `*` within a path component, `**` across components, `{a,b}` for alternatives",
            )),
        }
    }
    set.build().unwrap_or_else(|e| {
        findings.push(Finding::new(
            Code::EInvalidValue,
            format!("{SOURCE_POINTER}/{field}"),
            format!("the {field} globs cannot be compiled together: {e}"),
            "use fewer or simpler globs",
        ));
        GlobSet::empty()
    })
}

fn glob(pattern: &str) -> Result<Glob, globset::Error> {
    let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
    let pattern = pattern.strip_suffix('/').unwrap_or(pattern);
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(include: &[&str], exclude: &[&str]) -> Selector {
        let s = |v: &[&str]| v.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        Selector::new(&s(include), &s(exclude)).unwrap()
    }

    #[test]
    fn star_stays_in_one_component() {
        let s = sel(&["*.py", "src/**"], &[]);
        assert!(s.include_matches("app.py"));
        assert!(!s.include_matches("pkg/app.py"));
        assert!(s.include_matches("src/a/b/c.txt"));
    }

    #[test]
    fn leading_dot_slash_and_trailing_slash_are_ignored() {
        let s = sel(&["./src/"], &["./src/cache/"]);
        assert!(s.include_matches("src"));
        assert!(s.exclude_matches("src/cache"));
    }

    #[test]
    fn bad_globs_are_findings_with_their_index() {
        let err = Selector::new(&["ok".into()], &["a/**".into(), "[z-a".into()]).unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].code, Code::EInvalidValue);
        assert_eq!(err[0].path, "/apps/0/source/exclude/1");
    }
}
