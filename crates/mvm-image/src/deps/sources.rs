//! The download URLs a lockfile names in its structured fields, read with
//! the format's own parser: never a URL found elsewhere in the text (a
//! comment, a description), so a lockfile cannot grant the builder a
//! destination by mentioning it.
//!
//! | format | fields |
//! |---|---|
//! | `uv.lock` (TOML) | `[[package]]` `source.registry`, `source.git`, `source.url`, `sdist.url`, `wheels[].url` |
//! | requirements (pip-tools, `uv pip compile`) | `--index-url`/`-i`, `--extra-index-url`, `--find-links`/`-f` values; direct URL requirements (`name @ URL`, `-e URL`) |
//! | `package-lock.json` | `packages.*.resolved`; lockfile v1 `dependencies.*.resolved`, nested |
//! | `pnpm-lock.yaml` | `packages.*.resolution.tarball`, `packages.*.resolution.repo` |
//! | `yarn.lock` v1 | each entry's `resolved` |

use mvm_ir::text::escape_control;
use serde::Deserialize;

use crate::table::DepsTool;

/// One URL and where the lockfile names it (`uv.lock:12:14 ...`, a JSON
/// pointer, ...), escaped for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Named {
    pub url: String,
    pub at: String,
}

/// Every URL `text`'s structured fields name. A lockfile its own parser
/// rejects is an error: nothing is granted from a file that is not what it
/// says it is.
pub(crate) fn urls(tool: DepsTool, lockfile: &str, text: &str) -> Result<Vec<Named>, String> {
    match tool {
        DepsTool::Uv if lockfile.ends_with("uv.lock") => uv_lock(lockfile, text),
        DepsTool::Uv | DepsTool::PipTools => Ok(requirements(lockfile, text)),
        DepsTool::Npm => package_lock(text),
        DepsTool::Pnpm => pnpm_lock(text),
        DepsTool::Yarn => Ok(yarn_lock(lockfile, text)),
        DepsTool::None => Ok(vec![]),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[derive(Deserialize)]
struct UvLock {
    #[serde(default)]
    package: Vec<UvPackage>,
}

#[derive(Deserialize)]
struct UvPackage {
    #[serde(default)]
    name: String,
    source: Option<UvSource>,
    sdist: Option<UvFile>,
    #[serde(default)]
    wheels: Vec<UvFile>,
}

#[derive(Deserialize)]
struct UvSource {
    registry: Option<toml::Spanned<String>>,
    git: Option<toml::Spanned<String>>,
    url: Option<toml::Spanned<String>>,
}

#[derive(Deserialize)]
struct UvFile {
    url: Option<toml::Spanned<String>>,
}

fn uv_lock(lockfile: &str, text: &str) -> Result<Vec<Named>, String> {
    let lock: UvLock =
        toml::from_str(text).map_err(|e| format!("`{lockfile}` is not a uv.lock: {e}"))?;
    let mut out = Vec::new();
    for package in &lock.package {
        let mut add = |field: &str, value: &Option<toml::Spanned<String>>| {
            if let Some(v) = value {
                let (line, col) = line_col(text, v.span().start);
                out.push(Named {
                    url: v.get_ref().clone(),
                    at: format!(
                        "{lockfile}:{line}:{col} (package `{}`, {field})",
                        escape_control(&package.name)
                    ),
                });
            }
        };
        if let Some(s) = &package.source {
            add("source.registry", &s.registry);
            add("source.git", &s.git);
            add("source.url", &s.url);
        }
        if let Some(sdist) = &package.sdist {
            add("sdist.url", &sdist.url);
        }
        for wheel in &package.wheels {
            add("wheels.url", &wheel.url);
        }
    }
    Ok(out)
}

/// pip's requirements format: options and direct URLs, comments removed
/// (`#` at the start of a line or after whitespace), `\` continuing a line.
fn requirements(lockfile: &str, text: &str) -> Vec<Named> {
    const URL_OPTIONS: &[&str] = &[
        "-i",
        "--index-url",
        "--extra-index-url",
        "-f",
        "--find-links",
    ];
    let mut out = Vec::new();
    let mut pending = false; // an option's value comes next
    for (i, line) in text.lines().enumerate() {
        let content = match line
            .match_indices('#')
            .find(|&(at, _)| at == 0 || line[..at].ends_with(char::is_whitespace))
        {
            Some((at, _)) => &line[..at],
            None => line,
        };
        let continued = content.trim_end().ends_with('\\');
        let content = content.trim_end().trim_end_matches('\\');
        for (col, token) in tokens(content) {
            let (value, col) = if std::mem::take(&mut pending) {
                (token, col)
            } else if URL_OPTIONS.contains(&token) {
                pending = true;
                continue;
            } else if let Some((option, value)) = token.split_once('=')
                && URL_OPTIONS.contains(&option)
            {
                (value, col + option.len() + 1)
            } else if let Some(at) = url_start(token) {
                // `URL`, `name@URL` (PEP 508 also allows spaces around `@`).
                if at > 0 && !token[..at].ends_with('@') {
                    continue;
                }
                (&token[at..], col + at)
            } else {
                continue;
            };
            out.push(Named {
                url: value.to_string(),
                at: format!("{lockfile}:{}:{col}", i + 1),
            });
        }
        pending &= continued;
    }
    out
}

/// Whitespace-separated words with their 1-based columns.
fn tokens(line: &str) -> impl Iterator<Item = (usize, &str)> {
    line.split_whitespace()
        .map(move |t| (t.as_ptr() as usize - line.as_ptr() as usize + 1, t))
}

fn url_start(token: &str) -> Option<usize> {
    let lower = token.to_ascii_lowercase();
    ["git+https://", "https://"]
        .iter()
        .filter_map(|s| lower.find(s))
        .min()
}

fn package_lock(text: &str) -> Result<Vec<Named>, String> {
    let lock: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a package-lock.json (JSON): {e}"))?;
    let mut out = Vec::new();
    if let Some(packages) = lock.get("packages").and_then(|p| p.as_object()) {
        for (key, package) in packages {
            resolved(&mut out, package, &format!("/packages/{}", pointer(key)));
        }
    }
    v1_dependencies(&mut out, &lock, "");
    Ok(out)
}

/// Lockfile v1 nests `dependencies` inside dependencies.
fn v1_dependencies(out: &mut Vec<Named>, node: &serde_json::Value, path: &str) {
    let Some(deps) = node.get("dependencies").and_then(|d| d.as_object()) else {
        return;
    };
    for (name, dep) in deps {
        let here = format!("{path}/dependencies/{}", pointer(name));
        resolved(out, dep, &here);
        // npm nests at most as deep as node_modules does; stop far beyond.
        if here.matches("/dependencies/").count() < 64 {
            v1_dependencies(out, dep, &here);
        }
    }
}

fn resolved(out: &mut Vec<Named>, entry: &serde_json::Value, path: &str) {
    if let Some(url) = entry.get("resolved").and_then(|r| r.as_str()) {
        out.push(Named {
            url: url.to_string(),
            at: format!("package-lock.json {path}/resolved"),
        });
    }
}

/// A JSON pointer segment, escaped for messages.
fn pointer(key: &str) -> String {
    escape_control(&key.replace('~', "~0").replace('/', "~1")).into_owned()
}

fn pnpm_lock(text: &str) -> Result<Vec<Named>, String> {
    let lock: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| format!("not a pnpm-lock.yaml (YAML): {e}"))?;
    let mut out = Vec::new();
    let Some(packages) = lock.get("packages").and_then(|p| p.as_mapping()) else {
        return Ok(out);
    };
    for (key, package) in packages {
        let key = key.as_str().unwrap_or("?");
        for field in ["tarball", "repo"] {
            if let Some(url) = package
                .get("resolution")
                .and_then(|r| r.get(field))
                .and_then(|u| u.as_str())
            {
                out.push(Named {
                    url: url.to_string(),
                    at: format!(
                        "pnpm-lock.yaml packages['{}'].resolution.{field}",
                        escape_control(key)
                    ),
                });
            }
        }
    }
    Ok(out)
}

/// Classic yarn: `resolved "URL"` lines inside entries (indented);
/// comment lines start with `#`.
fn yarn_lock(lockfile: &str, text: &str) -> Vec<Named> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        if indent == 0 || body.starts_with('#') {
            continue;
        }
        let Some(value) = body.strip_prefix("resolved ") else {
            continue;
        };
        let value = value.trim();
        let url = if value.starts_with('"') {
            match serde_json::from_str::<String>(value) {
                Ok(url) => url,
                Err(_) => continue,
            }
        } else {
            value.to_string()
        };
        out.push(Named {
            url,
            at: format!("{lockfile}:{}:{}", i + 1, indent + "resolved ".len() + 1),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(tool: DepsTool, lockfile: &str, text: &str) -> Vec<(String, String)> {
        urls(tool, lockfile, text)
            .unwrap()
            .into_iter()
            .map(|n| (n.url, n.at))
            .collect()
    }

    #[test]
    fn uv_lock_fields_with_positions_and_not_comments() {
        let lock = r#"version = 1
# https://127.0.0.1:2375/comment
[[package]]
name = "anyio"
description = "see https://169.254.169.254/"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://files.pythonhosted.org/a.tar.gz", hash = "sha256:0" }
wheels = [
    { url = "https://files.pythonhosted.org/a.whl", hash = "sha256:0" },
]

[[package]]
name = "b"
source = { git = "https://git.example.org:8443/a/b?rev=1#abc" }
"#;
        assert_eq!(
            found(DepsTool::Uv, "uv.lock", lock),
            [
                (
                    "https://pypi.org/simple".into(),
                    "uv.lock:6:23 (package `anyio`, source.registry)".into()
                ),
                (
                    "https://files.pythonhosted.org/a.tar.gz".into(),
                    "uv.lock:7:17 (package `anyio`, sdist.url)".into()
                ),
                (
                    "https://files.pythonhosted.org/a.whl".into(),
                    "uv.lock:9:13 (package `anyio`, wheels.url)".into()
                ),
                (
                    "https://git.example.org:8443/a/b?rev=1#abc".into(),
                    "uv.lock:14:18 (package `b`, source.git)".into()
                ),
            ]
        );
        assert!(urls(DepsTool::Uv, "uv.lock", "[[package]\n").is_err());
    }

    #[test]
    fn requirements_options_and_direct_urls_but_not_comments() {
        let req = "# https://127.0.0.1:2375 in a comment\n\
                   --index-url https://pypi.example.org/simple\n\
                   --extra-index-url=https://extra.example.org/simple # https://10.0.0.1/\n\
                   anyio==4.0.0 \\\n    --hash=sha256:abc  # via https://169.254.169.254\n\
                   pkg @ https://files.example.org/pkg.whl#sha256=1\n\
                   -f\\\n https://links.example.org/\n\
                   -e git+https://git.example.org/x.git#egg=x\n\
                   note-https://ignored.example.org\n";
        let urls: Vec<String> = found(DepsTool::PipTools, "requirements.lock", req)
            .into_iter()
            .map(|(u, at)| format!("{u} @ {at}"))
            .collect();
        assert_eq!(
            urls,
            [
                "https://pypi.example.org/simple @ requirements.lock:2:13",
                "https://extra.example.org/simple @ requirements.lock:3:19",
                "https://files.example.org/pkg.whl#sha256=1 @ requirements.lock:6:7",
                "https://links.example.org/ @ requirements.lock:8:2",
                "git+https://git.example.org/x.git#egg=x @ requirements.lock:9:4",
            ]
        );
    }

    #[test]
    fn package_lock_resolved_fields_only() {
        let lock = r#"{
  "name": "x", "description": "https://127.0.0.1:2375",
  "packages": {
    "": {"name": "x"},
    "node_modules/a": {"resolved": "https://registry.npmjs.org/a/-/a-1.tgz"},
    "node_modules/@s/b": {"resolved": "git+https://github.example/s/b.git#1"}
  },
  "dependencies": {"a": {"resolved": "https://r1.example/a.tgz",
                         "dependencies": {"c": {"resolved": "https://r2.example/c.tgz"}}}}
}"#;
        assert_eq!(
            found(DepsTool::Npm, "package-lock.json", lock),
            [
                (
                    "git+https://github.example/s/b.git#1".into(),
                    "package-lock.json /packages/node_modules~1@s~1b/resolved".into()
                ),
                (
                    "https://registry.npmjs.org/a/-/a-1.tgz".into(),
                    "package-lock.json /packages/node_modules~1a/resolved".into()
                ),
                (
                    "https://r1.example/a.tgz".into(),
                    "package-lock.json /dependencies/a/resolved".into()
                ),
                (
                    "https://r2.example/c.tgz".into(),
                    "package-lock.json /dependencies/a/dependencies/c/resolved".into()
                ),
            ]
        );
        assert!(urls(DepsTool::Npm, "package-lock.json", "{").is_err());
    }

    #[test]
    fn pnpm_resolution_fields_only() {
        let lock = "lockfileVersion: '9.0'\n\
                    # tarball: https://127.0.0.1:2375/x.tgz\n\
                    packages:\n\
                    \x20 a@1.0.0:\n\
                    \x20   resolution: {integrity: sha512-x, tarball: https://npm.example.org/a.tgz}\n\
                    \x20 b@1.0.0:\n\
                    \x20   resolution: {commit: abc, repo: https://git.example.org/b.git, type: git}\n\
                    \x20   description: https://10.0.0.1/\n";
        assert_eq!(
            found(DepsTool::Pnpm, "pnpm-lock.yaml", lock),
            [
                (
                    "https://npm.example.org/a.tgz".into(),
                    "pnpm-lock.yaml packages['a@1.0.0'].resolution.tarball".into()
                ),
                (
                    "https://git.example.org/b.git".into(),
                    "pnpm-lock.yaml packages['b@1.0.0'].resolution.repo".into()
                ),
            ]
        );
    }

    #[test]
    fn yarn_resolved_lines_only() {
        let lock = "# yarn lockfile v1\n\
                    # resolved \"https://127.0.0.1:2375/\"\n\
                    \n\
                    a@^1:\n\
                    \x20 version \"1.0.0\"\n\
                    \x20 resolved \"https://registry.yarnpkg.com/a/-/a-1.0.0.tgz#abc\"\n\
                    \x20 # resolved \"https://10.0.0.1/\"\n\
                    \x20 integrity sha512-x\n";
        assert_eq!(
            found(DepsTool::Yarn, "yarn.lock", lock),
            [(
                "https://registry.yarnpkg.com/a/-/a-1.0.0.tgz#abc".into(),
                "yarn.lock:6:12".into()
            )]
        );
    }
}
