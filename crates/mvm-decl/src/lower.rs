//! The lowering core shared by both front ends: a [`Declaration`] of literal
//! values and helper calls becomes a [`Workload`], following the table in
//! `declarations.md`, plus a map from every IR JSON pointer it wrote to the
//! source offset it came from (so validation findings can be located).

use std::collections::BTreeMap;
use std::path::Path;

use mvm_ir::codes::pointer_segment;
use mvm_ir::*;

use crate::diag::Diag;
use crate::lang::Lang;
use crate::tables::{self, THREAT_TIER};
use crate::value::Declaration;

use args::Args;

mod args;
mod build;
mod network;
mod run;

/// The lowered workload and where each IR pointer came from (byte offsets).
#[derive(Debug)]
pub struct Lowered {
    pub workload: Workload,
    pub spans: BTreeMap<String, usize>,
}

/// Lowers `decl`. `rel_path` is the declaration file's path relative to the
/// source root; it names the default entrypoint module.
pub fn lower(decl: &Declaration, lang: Lang, rel_path: &Path) -> Result<Lowered, Vec<Diag>> {
    let mut l = Lowerer {
        lang,
        spans: BTreeMap::new(),
        diags: Vec::new(),
    };
    let workload = l.workload(decl, rel_path);
    match workload {
        Some(workload) if l.diags.is_empty() => Ok(Lowered {
            workload,
            spans: l.spans,
        }),
        _ => Err(l.diags),
    }
}

struct Lowerer {
    lang: Lang,
    spans: BTreeMap<String, usize>,
    diags: Vec<Diag>,
}

pub(super) fn child(ptr: &str, seg: impl AsRef<str>) -> String {
    format!("{ptr}/{}", pointer_segment(seg.as_ref()))
}

impl Lowerer {
    fn err(&mut self, code: Code, at: usize, message: impl Into<String>, hint: impl Into<String>) {
        self.diags.push(Diag::new(code, at, message, hint));
    }

    fn span(&mut self, ptr: impl Into<String>, at: usize) {
        self.spans.insert(ptr.into(), at);
    }

    /// The helper as the user would spell it in this file's language.
    fn spelled(&self, helper: &str) -> String {
        match self.lang {
            Lang::Python => format!("mvm.{helper}"),
            Lang::TypeScript => format!("mvm.{}", camel_case(helper)),
        }
    }

    fn workload(&mut self, decl: &Declaration, rel_path: &Path) -> Option<Workload> {
        let app_call = &decl.app;
        let args = self.bind(app_call, decl.app_at);
        let workload_id = match &decl.workload {
            Some(call) => match self.bind(call, decl.app_at) {
                Some(wargs) => {
                    let v = wargs.get("id");
                    let id = self.req_str(&wargs, "id");
                    if let Some(v) = v {
                        self.span("/id", v.at);
                    }
                    id
                }
                None => None,
            },
            None => None,
        };
        let args = args?;
        self.span("", decl.app_at);
        self.span("/apps", decl.app_at);
        self.span("/apps/0", decl.app_at);
        let app = self.app(&args, decl, rel_path);
        let app = app?;
        let id = match (&decl.workload, workload_id) {
            (Some(_), Some(id)) => id,
            (Some(_), None) => return None,
            (None, _) => {
                self.span("/id", self.spans["/apps/0/name"]);
                app.name.clone()
            }
        };
        Some(Workload {
            schema_version: SCHEMA_VERSION.to_string(),
            id,
            apps: vec![app],
            volumes: Vec::new(),
            extensions: BTreeMap::new(),
        })
    }

    fn app(&mut self, args: &Args, decl: &Declaration, rel_path: &Path) -> Option<App> {
        let p = "/apps/0";
        let name = match args.get("name") {
            Some(v) => {
                self.span(child(p, "name"), v.at);
                self.str_of(args, "name", v)
            }
            None => match &decl.function {
                Some(f) => {
                    self.span(child(p, "name"), decl.app_at);
                    Some(f.replace('_', "-"))
                }
                None => {
                    self.err(
                        Code::EKwargType,
                        decl.app_at,
                        format!(
                            "{}() has no `name` and the function has no name to default to",
                            args.owner
                        ),
                        "add name=\"my-app\" (or assign the app to an exported const)",
                    );
                    None
                }
            },
        };
        let source = match args.get("source") {
            Some(v) => self.source(args, v, &child(p, "source")),
            None => Some(Source::LocalPath {
                path: tables::SOURCE_PATH.into(),
                include: default_include(),
                exclude: tables::SOURCE_EXCLUDE
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            }),
        };
        let image = match args.get("image") {
            Some(v) => self.image(args, v, &child(p, "image")),
            // The file's own language decides the default runtime.
            None => Some(Image::NixPackages {
                packages: vec![match self.lang {
                    Lang::Python => build::default_python_package(),
                    Lang::TypeScript => build::default_node_package(),
                }],
            }),
        };
        let resources = match args.get("resources") {
            Some(v) => self.resources(args, v, &child(p, "resources")),
            None => Some(Resources::default()),
        };
        let dependencies = match args.get("dependencies") {
            Some(v) => self.dependencies(args, v, &child(p, "dependencies")),
            None => Some(Dependencies::None),
        };
        let network = match args.get("network") {
            Some(v) => self.network(args, v, &child(p, "network")),
            None => Some(Network::default()),
        };
        let env = match args.get("env") {
            Some(v) => self.env(args, v, &child(p, "env")),
            None => Some(BTreeMap::new()),
        };
        // The default module is the declaration's path inside the app's
        // source directory (what the guest sees under /app), not inside the
        // directory the source path is written relative to.
        let module_rel = match &source {
            Some(Source::LocalPath { path, .. }) => module_relative(rel_path, path),
            _ => Some(rel_path.to_path_buf()),
        };
        let entrypoints = self.entrypoints(
            args,
            decl,
            module_rel.as_deref(),
            source.as_ref(),
            &child(p, "entrypoints"),
        );
        let hooks = self.hooks(args, &child(p, "hooks"));
        let addons = match args.get("addons") {
            Some(v) => self.addons(args, v, &child(p, "addons")),
            None => Some(Vec::new()),
        };
        let threat_tier = match args.get("threat_tier") {
            Some(v) => {
                self.span(child(p, "threat_tier"), v.at);
                self.one_of(args, v, &THREAT_TIER)
            }
            None => Some(THREAT_TIER.default_value()),
        };
        Some(App {
            name: name?,
            source: source?,
            image: image?,
            resources: resources?,
            dependencies: dependencies?,
            network: network?,
            env: env?,
            entrypoints: entrypoints?,
            hooks: hooks?,
            addons: addons?,
            mounts: Vec::new(),
            threat_tier: threat_tier?,
        })
    }
}

/// The declaration's path relative to the source directory `source_path`,
/// both relative to the declaration's base directory; `None` when the
/// declaration is not inside it. Lexical, nothing is read from disk. A path
/// that escapes (absolute, `..`) is rejected by validation with
/// E_SOURCE_ESCAPES, so it keeps the declaration's own path here and the
/// user sees that error rather than a consequence of it.
pub fn module_relative(decl_rel: &Path, source_path: &str) -> Option<std::path::PathBuf> {
    use std::path::Component;
    let source = Path::new(source_path);
    if source.is_absolute() || source.components().any(|c| c == Component::ParentDir) {
        return Some(decl_rel.to_path_buf());
    }
    let normal = |p: &Path| -> Vec<std::ffi::OsString> {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_os_string()),
                _ => None,
            })
            .collect()
    };
    let root = normal(source);
    let decl = normal(decl_rel);
    let rest = decl.strip_prefix(root.as_slice())?;
    (!rest.is_empty()).then(|| rest.iter().collect())
}

/// `src/tool.py` → `src.tool`: the default module of a function entrypoint.
pub fn module_name(rel_path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    let comps: Vec<_> = rel_path.components().collect();
    for (i, c) in comps.iter().enumerate() {
        let std::path::Component::Normal(os) = c else {
            continue;
        };
        let s = if i + 1 == comps.len() {
            Path::new(os)
                .file_stem()
                .unwrap_or(os)
                .to_string_lossy()
                .into_owned()
        } else {
            os.to_string_lossy().into_owned()
        };
        parts.push(s);
    }
    parts.join(".")
}

/// `dns_system` → `dnsSystem`: the TypeScript alias of a snake_case name.
pub fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names() {
        assert_eq!(module_name(Path::new("app.py")), "app");
        assert_eq!(module_name(Path::new("src/tool.py")), "src.tool");
        assert_eq!(module_name(Path::new("./src/app.ts")), "src.app");
        assert_eq!(camel_case("rootfs_size_mb"), "rootfsSizeMb");
    }
}
