//! What the image is built from: source, image, resources, dependencies.

use mvm_ir::*;

use super::args::Args;
use super::{Lowerer, child};
use crate::value::{Kind, Value};

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
            None => ".".into(),
        };
        let include = match a.get("include") {
            Some(iv) => self.str_list(&a, "include", iv, &child(ptr, "include"))?,
            None => default_include(),
        };
        let exclude = match a.get("exclude") {
            Some(ev) => self.str_list(&a, "exclude", ev, &child(ptr, "exclude"))?,
            None => Vec::new(),
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
                        let minor = s
                            .strip_prefix("3.")
                            .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()));
                        let Some(minor) = minor else {
                            self.err(
                                Code::EInvalidValue,
                                pv.at,
                                format!("python version \"{s}\" is not of the form \"3.N\""),
                                "write the version as a string like \"3.13\"",
                            );
                            return None;
                        };
                        format!("python3{minor}")
                    }
                    None => "python313".into(),
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
                        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                            self.err(
                                Code::EInvalidValue,
                                nv.at,
                                format!("node version \"{s}\" is not a major version number"),
                                "write the major version, e.g. \"22\"",
                            );
                            return None;
                        }
                        format!("nodejs_{s}")
                    }
                    None => "nodejs_22".into(),
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
        if let (Some(_), Some(cpu)) = (a.get("cpu_cores"), a.get("cpu")) {
            self.err(
                Code::EKwargConflict,
                cpu.at,
                format!(
                    "{}() is given both `cpu` and `{}`",
                    a.owner,
                    self.param_spelling("cpu_cores")
                ),
                "`cpu` is an alias of `cpu_cores`; keep one of them",
            );
            return None;
        }
        let mut r = Resources::default();
        let mut ok = true;
        let fields = [
            ("cpu_cores", "cpu_cores"),
            ("cpu", "cpu_cores"),
            ("memory_mb", "memory_mb"),
            ("rootfs_size_mb", "rootfs_size_mb"),
        ];
        for (param, field) in fields {
            let Some(fv) = a.get(param) else { continue };
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
                    "cpu_cores is 1..=64, memory_mb 64..=65536, rootfs_size_mb 64..=1048576",
                );
                ok = false;
                continue;
            };
            match field {
                "cpu_cores" => r.cpu_cores = n,
                "memory_mb" => r.memory_mb = n,
                _ => r.rootfs_size_mb = n,
            }
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
                    Some(tv) => self.one_of(
                        &a,
                        "tool",
                        tv,
                        &[
                            ("uv", PythonTool::Uv),
                            ("pip-tools", PythonTool::PipTools),
                            ("pip_tools", PythonTool::PipTools),
                        ],
                    )?,
                    None => PythonTool::Uv,
                };
                let default = match tool {
                    PythonTool::Uv => "uv.lock",
                    PythonTool::PipTools => "requirements.txt",
                };
                let lockfile = self
                    .opt_str(&a, "lockfile")?
                    .unwrap_or_else(|| default.into());
                Some(Dependencies::Python { lockfile, tool })
            }
            "node_deps" => {
                let tool = match a.get("tool") {
                    Some(tv) => self.one_of(
                        &a,
                        "tool",
                        tv,
                        &[
                            ("npm", NodeTool::Npm),
                            ("pnpm", NodeTool::Pnpm),
                            ("yarn", NodeTool::Yarn),
                        ],
                    )?,
                    None => NodeTool::Npm,
                };
                let default = match tool {
                    NodeTool::Npm => "package-lock.json",
                    NodeTool::Pnpm => "pnpm-lock.yaml",
                    NodeTool::Yarn => "yarn.lock",
                };
                let lockfile = self
                    .opt_str(&a, "lockfile")?
                    .unwrap_or_else(|| default.into());
                Some(Dependencies::Node { lockfile, tool })
            }
            _ => Some(Dependencies::None),
        }
    }
}
