//! What the image is built from: source, image, resources, dependencies.

use mvm_ir::*;

use super::args::Args;
use super::{Lowerer, child};
use crate::tables::{self, NODE_TOOL, PYTHON_TOOL};
use crate::value::{Kind, Value};

/// `"3.13"` → `python313`: the nixpkgs package of a Python version, if it
/// is of the form `3.N`.
pub(super) fn python_package(version: &str) -> Option<String> {
    let minor = version
        .strip_prefix("3.")
        .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))?;
    Some(format!("python3{minor}"))
}

/// `"22"` → `nodejs_22`: the nixpkgs package of a Node major version.
pub(super) fn node_package(major: &str) -> Option<String> {
    (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("nodejs_{major}"))
}

/// `cpu_cores is 1..=64, memory_mb 64..=65536, ...`: the IR's ranges, for hints.
fn resource_ranges() -> String {
    let range = |r: std::ops::RangeInclusive<u64>| format!("{}..={}", r.start(), r.end());
    format!(
        "cpu_cores is {}, memory_mb {}, rootfs_size_mb {}",
        range(Resources::CPU_CORES),
        range(Resources::MEMORY_MB),
        range(Resources::ROOTFS_SIZE_MB)
    )
}

/// `python313`: the package of [`tables::PYTHON_VERSION`].
pub(super) fn default_python_package() -> String {
    python_package(tables::PYTHON_VERSION).expect("tables::PYTHON_VERSION is of the form 3.N")
}

/// `nodejs_22`: the package of [`tables::NODE_VERSION`].
pub(super) fn default_node_package() -> String {
    node_package(tables::NODE_VERSION).expect("tables::NODE_VERSION is a major version")
}

impl Lowerer {
    pub(super) fn source(&mut self, args: &Args, v: &Value, ptr: &str) -> Option<Source> {
        let call = self.call_of(args, "source", v, &["local_path"])?;
        self.span(ptr, v.at);
        let a = self.bind(call, v.at)?;
        let path = match a.get("path") {
            Some(pv) => {
                self.span(child(ptr, "path"), pv.at);
                self.str_of(&a, "path", pv)?
            }
            None => tables::SOURCE_PATH.into(),
        };
        let include = match a.get("include") {
            Some(iv) => self.str_list(&a, "include", iv, &child(ptr, "include"))?,
            None => default_include(),
        };
        let exclude = match a.get("exclude") {
            Some(ev) => self.str_list(&a, "exclude", ev, &child(ptr, "exclude"))?,
            None => tables::SOURCE_EXCLUDE
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        Some(Source::LocalPath {
            path,
            include,
            exclude,
        })
    }

    pub(super) fn image(&mut self, args: &Args, v: &Value, ptr: &str) -> Option<Image> {
        let call = self.call_of(
            args,
            "image",
            v,
            &["python_image", "node_image", "nix_packages", "oci_image"],
        )?;
        self.span(ptr, v.at);
        let a = self.bind(call, v.at)?;
        let pkgs = child(ptr, "packages");
        let extra = |l: &mut Self, offset: usize| -> Option<Vec<String>> {
            match a.get("packages") {
                Some(pv) => {
                    let list = l.str_list(&a, "packages", pv, &pkgs)?;
                    // Shift the recorded element spans past the runtime package.
                    for i in (0..list.len()).rev() {
                        if let Some(at) = l.spans.remove(&child(&pkgs, i.to_string())) {
                            l.span(child(&pkgs, (i + offset).to_string()), at);
                        }
                    }
                    Some(list)
                }
                None => Some(Vec::new()),
            }
        };
        match call.helper.as_str() {
            "python_image" => {
                let version = match a.get("python") {
                    Some(pv) => {
                        let s = self.str_of(&a, "python", pv)?;
                        let Some(package) = python_package(&s) else {
                            self.err(
                                Code::EInvalidValue,
                                pv.at,
                                format!("python version \"{s}\" is not of the form \"3.N\""),
                                "write the version as a string like \"3.13\"",
                            );
                            return None;
                        };
                        package
                    }
                    None => default_python_package(),
                };
                let mut packages = vec![version];
                packages.extend(extra(self, 1)?);
                self.span(child(&pkgs, "0"), a.get("python").map_or(v.at, |pv| pv.at));
                Some(Image::NixPackages { packages })
            }
            "node_image" => {
                let version = match a.get("node") {
                    Some(nv) => {
                        let s = match &nv.kind {
                            Kind::Int(i) => i.to_string(),
                            _ => self.str_of(&a, "node", nv)?,
                        };
                        let Some(package) = node_package(&s) else {
                            self.err(
                                Code::EInvalidValue,
                                nv.at,
                                format!("node version \"{s}\" is not a major version number"),
                                "write the major version, e.g. \"22\"",
                            );
                            return None;
                        };
                        package
                    }
                    None => default_node_package(),
                };
                let mut packages = vec![version];
                packages.extend(extra(self, 1)?);
                self.span(child(&pkgs, "0"), a.get("node").map_or(v.at, |nv| nv.at));
                Some(Image::NixPackages { packages })
            }
            "nix_packages" => Some(Image::NixPackages {
                packages: extra(self, 0)?,
            }),
            _ => {
                let reference = self.req_str(&a, "reference")?;
                if let Some(rv) = a.get("reference") {
                    self.span(child(ptr, "reference"), rv.at);
                }
                let digest = self.opt_str(&a, "digest")?;
                if let Some(dv) = a.get("digest") {
                    self.span(child(ptr, "digest"), dv.at);
                }
                Some(Image::OciBase { reference, digest })
            }
        }
    }

    pub(super) fn resources(&mut self, args: &Args, v: &Value, ptr: &str) -> Option<Resources> {
        let call = self.call_of(args, "resources", v, &["resources"])?;
        self.span(ptr, v.at);
        let a = self.bind(call, v.at)?;
        for (alias, param) in tables::param_aliases("resources") {
            if let (Some(_), Some(av)) = (a.get(param), a.get(alias)) {
                self.err(
                    Code::EKwargConflict,
                    av.at,
                    format!(
                        "{}() is given both `{alias}` and `{}`",
                        a.owner,
                        self.param_spelling(param)
                    ),
                    format!("`{alias}` is an alias of `{param}`; keep one of them"),
                );
                return None;
            }
        }
        let mut r = Resources::default();
        let mut ok = true;
        let fields = [
            ("cpu_cores", &mut r.cpu_cores),
            ("memory_mb", &mut r.memory_mb),
            ("rootfs_size_mb", &mut r.rootfs_size_mb),
        ];
        for (field, slot) in fields {
            // Given by its own name or by an alias (not both: refused above).
            let alias = tables::param_aliases("resources")
                .find(|&(_, p)| p == field)
                .map(|(alias, _)| alias);
            let given = [Some(field), alias]
                .into_iter()
                .flatten()
                .find_map(|param| Some((param, a.get(param)?)));
            let Some((param, fv)) = given else { continue };
            self.span(child(ptr, field), fv.at);
            let Some(i) = self.int_of(&a, param, fv) else {
                ok = false;
                continue;
            };
            let Ok(n) = u64::try_from(i) else {
                self.err(
                    Code::EResourcesRange,
                    fv.at,
                    format!(
                        "`{}` of {}() is {i}, which is below its range",
                        self.param_spelling(param),
                        a.owner
                    ),
                    resource_ranges(),
                );
                ok = false;
                continue;
            };
            *slot = n;
        }
        ok.then_some(r)
    }

    pub(super) fn dependencies(
        &mut self,
        args: &Args,
        v: &Value,
        ptr: &str,
    ) -> Option<Dependencies> {
        let call = self.call_of(
            args,
            "dependencies",
            v,
            &["python_deps", "node_deps", "no_deps"],
        )?;
        self.span(ptr, v.at);
        let a = self.bind(call, v.at)?;
        if let Some(lv) = a.get("lockfile") {
            self.span(child(ptr, "lockfile"), lv.at);
        }
        if let Some(tv) = a.get("tool") {
            self.span(child(ptr, "tool"), tv.at);
        }
        match call.helper.as_str() {
            "python_deps" => {
                let tool = match a.get("tool") {
                    Some(tv) => self.one_of(&a, tv, &PYTHON_TOOL)?,
                    None => PYTHON_TOOL.default_value(),
                };
                let default = tables::lockfile(tables::PYTHON_LOCKFILES, tool);
                let lockfile = self
                    .opt_str(&a, "lockfile")?
                    .unwrap_or_else(|| default.into());
                Some(Dependencies::Python { lockfile, tool })
            }
            "node_deps" => {
                let tool = match a.get("tool") {
                    Some(tv) => self.one_of(&a, tv, &NODE_TOOL)?,
                    None => NODE_TOOL.default_value(),
                };
                let default = tables::lockfile(tables::NODE_LOCKFILES, tool);
                let lockfile = self
                    .opt_str(&a, "lockfile")?
                    .unwrap_or_else(|| default.into());
                Some(Dependencies::Node { lockfile, tool })
            }
            _ => Some(Dependencies::None),
        }
    }
}
