//! What runs: env, entrypoints, hooks, addons.

use std::collections::BTreeMap;
use std::path::Path;

use mvm_ir::*;

use super::args::Args;
use super::{Lowerer, child, module_name};
use crate::helpers::PHASES;
use crate::lang::Lang;
use crate::tables;
use crate::value::{Declaration, Kind, Value};

impl Lowerer {
    pub(super) fn env(
        &mut self,
        args: &Args,
        v: &Value,
        ptr: &str,
    ) -> Option<BTreeMap<String, EnvValue>> {
        let Kind::Dict(entries) = &v.kind else {
            self.type_err(args, "env", v, "a dict/object of env names to values");
            return None;
        };
        self.span(ptr, v.at);
        let mut out = BTreeMap::new();
        let mut ok = true;
        for e in entries {
            let ep = child(ptr, &e.key);
            self.span(ep.clone(), e.key_at);
            let value = match &e.value.kind {
                Kind::Str(s) => Some(EnvValue::Literal { value: s.clone() }),
                Kind::Call(c) if c.helper == "literal" => self.bind(c, e.value.at).and_then(|a| {
                    let value = self.req_str(&a, "value")?;
                    self.span(child(&ep, "value"), a.get("value")?.at);
                    Some(EnvValue::Literal { value })
                }),
                Kind::Call(c) if c.helper == "secret" => self
                    .bind(c, e.value.at)
                    .and_then(|a| self.secret(&a, &e.key, &ep, e.value.at)),
                _ => {
                    let expected = format!(
                        "a string, {}(...) or {}(...)",
                        self.spelled("literal"),
                        self.spelled("secret")
                    );
                    self.type_err(args, "env", &e.value, &expected);
                    None
                }
            };
            match value {
                Some(val) => {
                    out.insert(e.key.clone(), val);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// `mvm.secret(name, var, type=, hosts=, header=)` as the env value at
    /// `ep`. Whether the binding makes sense (a header the host may set,
    /// granted hosts) is the validator's; here only the types.
    fn secret(&mut self, a: &Args, key: &str, ep: &str, at: usize) -> Option<EnvValue> {
        let name = self.req_str(a, "name")?;
        self.span(child(ep, "name"), a.get("name")?.at);
        if let Some(vv) = a.get("var") {
            let var = self.str_of(a, "var", vv)?;
            if var != key {
                self.err(
                    Code::ESecretVarMismatch,
                    vv.at,
                    format!(
                        "{}(var=\"{var}\") does not match its env key \"{key}\"",
                        a.owner
                    ),
                    format!(
                        "the guest sees the secret as ${key}; drop `var` or set it to \"{key}\""
                    ),
                );
                return None;
            }
        }
        // An absent binding field is located at what decides it: the call
        // for `type` and `hosts`, the `type` for a missing `header`.
        let auth = match a.get("type") {
            Some(tv) => {
                self.span(child(ep, "type"), tv.at);
                self.one_of(a, tv, &tables::SECRET_TYPE)
            }
            None => {
                self.span(child(ep, "type"), at);
                Some(tables::SECRET_TYPE.default_value())
            }
        };
        let header = match a.get("header") {
            Some(hv) => {
                self.span(child(ep, "header"), hv.at);
                self.str_of(a, "header", hv).map(Some)
            }
            None => {
                let decided = a.get("type").map_or(at, |tv| tv.at);
                self.span(child(ep, "header"), decided);
                Some(None)
            }
        };
        let hosts = match a.get("hosts") {
            Some(hv) => self.str_list(a, "hosts", hv, &child(ep, "hosts")),
            None => {
                self.span(child(ep, "hosts"), at);
                Some(Vec::new())
            }
        };
        Some(EnvValue::SecretRef {
            name,
            auth: auth?,
            header: header?,
            hosts: hosts?,
        })
    }

    pub(super) fn entrypoints(
        &mut self,
        args: &Args,
        decl: &Declaration,
        module_rel: Option<&Path>,
        source: Option<&Source>,
        ptr: &str,
    ) -> Option<Vec<Entrypoint>> {
        let mut list = match (args.get("entrypoint"), args.get("entrypoints")) {
            (Some(_), Some(both)) => {
                self.err(
                    Code::EKwargConflict,
                    both.at,
                    format!("{}() is given both `entrypoint` and `entrypoints`", args.owner),
                    "use `entrypoint` for one entrypoint or `entrypoints=[...]` for several, not both",
                );
                return None;
            }
            (Some(v), None) => {
                self.span(ptr, v.at);
                vec![self.entrypoint(args, "entrypoint", v, &child(ptr, "0"))?]
            }
            (None, Some(v)) => {
                let Kind::List(items) = &v.kind else {
                    self.type_err(args, "entrypoints", v, "a list of entrypoints");
                    return None;
                };
                self.span(ptr, v.at);
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    out.push(self.entrypoint(
                        args,
                        "entrypoints",
                        item,
                        &child(ptr, i.to_string()),
                    )?);
                }
                out
            }
            (None, None) => {
                let Some(function) = decl.function.clone() else {
                    self.err(
                        Code::EKwargType,
                        decl.app_at,
                        format!("{}() has no entrypoint and the function has no name to default to", args.owner),
                        "add entrypoint=mvm.entrypoint_function(module=..., function=...), or assign the app to an exported const",
                    );
                    return None;
                };
                let Some(module_rel) = module_rel else {
                    if let Some(Source::LocalPath { path, .. }) = source {
                        self.err(
                            Code::EInvalidValue,
                            decl.app_at,
                            format!("this file is not inside the app's source directory `{path}`, so it cannot be the default entrypoint module"),
                            "point source=mvm.local_path(...) at a directory holding this file, or give entrypoint=mvm.entrypoint_function(module=..., function=...)",
                        );
                    }
                    return None;
                };
                self.span(ptr, decl.app_at);
                vec![Entrypoint::Function {
                    name: function.replace('_', "-"),
                    language: self.language(),
                    module: module_name(module_rel),
                    function,
                    format: tables::FUNCTION_FORMAT,
                    working_dir: default_working_dir(),
                    primary: true,
                }]
            }
        };
        // A single entrypoint is the primary one whether or not it says so.
        if let [Entrypoint::Function { primary, .. } | Entrypoint::Command { primary, .. }] =
            list.as_mut_slice()
        {
            *primary = true;
        }
        Some(list)
    }

    pub(super) fn language(&self) -> Language {
        match self.lang {
            Lang::Python => Language::Python,
            Lang::TypeScript => Language::Node,
        }
    }

    pub(super) fn entrypoint(
        &mut self,
        args: &Args,
        param: &str,
        v: &Value,
        ptr: &str,
    ) -> Option<Entrypoint> {
        let call = self.call_of(args, param, v, &["entrypoint_function", "entrypoint"])?;
        self.span(ptr, v.at);
        let a = self.bind(call, v.at)?;
        for field in ["module", "function", "primary", "name", "command"] {
            if let Some(fv) = a.get(field) {
                self.span(child(ptr, field), fv.at);
            }
        }
        let primary = self.opt_bool(&a, "primary")?.unwrap_or(tables::PRIMARY);
        let name = self.opt_str(&a, "name")?;
        if call.helper == "entrypoint_function" {
            let module = self.req_str(&a, "module")?;
            let function = self.req_str(&a, "function")?;
            Some(Entrypoint::Function {
                name: name.unwrap_or_else(|| function.replace('_', "-")),
                language: self.language(),
                module,
                function,
                format: tables::FUNCTION_FORMAT,
                working_dir: default_working_dir(),
                primary,
            })
        } else {
            let cv = a.get("command")?;
            let command = self.str_list(&a, "command", cv, &child(ptr, "command"))?;
            Some(Entrypoint::Command {
                name: name.unwrap_or_else(|| tables::COMMAND_NAME.into()),
                command,
                working_dir: default_working_dir(),
                primary,
            })
        }
    }

    pub(super) fn hooks(&mut self, args: &Args, ptr: &str) -> Option<Hooks> {
        let mut hooks = Hooks::default();
        let mut ok = true;
        for (phase, name) in HookPhase::ALL.into_iter().zip(PHASES) {
            let Some(v) = args.get(name) else { continue };
            let pp = child(ptr, name);
            self.span(ptr, v.at);
            match self.hook_list(args, name, v, &pp) {
                Some(list) => *hooks.phase_mut(phase) = list,
                None => ok = false,
            }
        }
        ok.then_some(hooks)
    }

    /// One phase: a line, an argv list, `mvm.hook(...)`, or a list of those.
    pub(super) fn hook_list(
        &mut self,
        args: &Args,
        param: &str,
        v: &Value,
        ptr: &str,
    ) -> Option<Vec<HookCmd>> {
        self.span(ptr, v.at);
        match &v.kind {
            Kind::Str(line) => {
                self.span(child(ptr, "0"), v.at);
                Some(vec![HookCmd::Shell { line: line.clone() }])
            }
            Kind::Call(_) => Some(vec![self.hook_cmd(args, param, v, &child(ptr, "0"))?]),
            Kind::List(items) if items.iter().all(|i| matches!(i.kind, Kind::Str(_))) => {
                if items.is_empty() {
                    return Some(Vec::new());
                }
                self.span(child(ptr, "0"), v.at);
                let argv = self.str_list(args, param, v, &child(&child(ptr, "0"), "argv"))?;
                Some(vec![HookCmd::Argv { argv }])
            }
            Kind::List(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let ip = child(ptr, i.to_string());
                    self.span(ip.clone(), item.at);
                    out.push(match &item.kind {
                        Kind::Str(line) => HookCmd::Shell { line: line.clone() },
                        Kind::List(_) => HookCmd::Argv {
                            argv: self.str_list(args, param, item, &child(&ip, "argv"))?,
                        },
                        _ => self.hook_cmd(args, param, item, &ip)?,
                    });
                }
                Some(out)
            }
            _ => {
                let expected = format!(
                    "a shell line, an argv list, {}(...) or a list of those",
                    self.spelled("hook")
                );
                self.type_err(args, param, v, &expected);
                None
            }
        }
    }

    pub(super) fn hook_cmd(
        &mut self,
        args: &Args,
        param: &str,
        v: &Value,
        ptr: &str,
    ) -> Option<HookCmd> {
        let call = self.call_of(args, param, v, &["hook"])?;
        self.span(ptr, v.at);
        let a = self.bind(call, v.at)?;
        let cmd = a.get("cmd")?;
        match &cmd.kind {
            Kind::Str(line) => Some(HookCmd::Shell { line: line.clone() }),
            Kind::List(_) => Some(HookCmd::Argv {
                argv: self.str_list(&a, "cmd", cmd, &child(ptr, "argv"))?,
            }),
            _ => {
                self.type_err(&a, "cmd", cmd, "a shell line or a list of strings");
                None
            }
        }
    }

    pub(super) fn addons(&mut self, args: &Args, v: &Value, ptr: &str) -> Option<Vec<AddonUse>> {
        let Kind::List(items) = &v.kind else {
            self.type_err(
                args,
                "addons",
                v,
                &format!("a list of {}(...)", self.spelled("addon")),
            );
            return None;
        };
        self.span(ptr, v.at);
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ip = child(ptr, i.to_string());
            let call = self.call_of(args, "addons", item, &["addon"])?;
            self.span(ip.clone(), item.at);
            let a = self.bind(call, item.at)?;
            let name = self.req_str(&a, "name")?;
            self.span(child(&ip, "name"), a.get("name")?.at);
            let path = self.req_str(&a, "path")?;
            self.span(child(&ip, "source"), a.get("path")?.at);
            let hooks = self.hooks(&a, &child(&ip, "hooks"))?;
            out.push(AddonUse {
                name,
                source: AddonSource::Local { path },
                hooks,
            });
        }
        Some(out)
    }
}
