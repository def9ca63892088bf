//! Binding a helper call's arguments to its parameters, and reading typed
//! values out of them with precise errors.

use std::collections::BTreeMap;

use mvm_ir::Code;

use super::{Lowerer, camel_case, child};
use crate::helpers::{self, SIGNATURES, Signature};
use crate::lang::Lang;
use crate::tables::{Choices, PORT_MIN};
use crate::value::{Call, Kind, Kwarg, Value};

/// A call's arguments bound to parameter names.
pub(super) struct Args<'a> {
    pub(super) owner: String,
    map: BTreeMap<&'static str, &'a Value>,
}

impl<'a> Args<'a> {
    pub(super) fn get(&self, param: &str) -> Option<&'a Value> {
        self.map.get(param).copied()
    }
}

impl Lowerer {
    pub(super) fn bind<'a>(&mut self, call: &'a Call, at: usize) -> Option<Args<'a>> {
        let Some(sig) = helpers::signature(&call.helper) else {
            self.unknown_helper(call, at);
            return None;
        };
        let owner = call.written.clone();
        let mut map: BTreeMap<&'static str, &'a Value> = BTreeMap::new();
        let mut ok = true;
        if call.args.len() > sig.positional {
            let extra = &call.args[sig.positional];
            let hint = if sig.positional == 0 {
                format!("pass every argument by name: {}", self.allowed(sig))
            } else {
                format!("pass the rest by name: {}", self.allowed(sig))
            };
            self.err(
                Code::EKwargConflict,
                extra.at,
                format!(
                    "{owner}() takes at most {} positional argument(s), got {}",
                    sig.positional,
                    call.args.len()
                ),
                hint,
            );
            ok = false;
        }
        for (param, value) in sig.params.iter().zip(&call.args) {
            map.insert(param, value);
        }
        for kw in &call.kwargs {
            let Some(param) = sig.params.iter().find(|p| **p == kw.name) else {
                let names = sig.params.iter().copied();
                let hint = match helpers::closest(&kw.name, names) {
                    // Suggest in the user's own spelling: camelCase if they wrote camelCase.
                    Some(s) if kw.written != kw.name => format!(
                        "did you mean `{}`? {owner} accepts: {}",
                        camel_case(s),
                        self.allowed(sig)
                    ),
                    Some(s) => {
                        format!("did you mean `{s}`? {owner} accepts: {}", self.allowed(sig))
                    }
                    None => format!("{owner} accepts: {}", self.allowed(sig)),
                };
                self.err(
                    Code::EKwargUnknown,
                    kw.at,
                    format!("{owner}() has no argument `{}`", kw.written),
                    hint,
                );
                ok = false;
                continue;
            };
            if map.insert(param, &kw.value).is_some() {
                self.err(
                    Code::EKwargConflict,
                    kw.at,
                    format!(
                        "`{}` is given twice to {owner}() (positionally and by name, or repeated)",
                        kw.written
                    ),
                    "give each argument once",
                );
                ok = false;
            }
        }
        // None/null means "not given": every optional parameter defaults.
        map.retain(|_, v| v.kind != Kind::Null);
        for req in sig.required {
            if !map.contains_key(req) && ok {
                self.err(
                    Code::EKwargType,
                    at,
                    format!("{owner}() needs `{}`", self.param_spelling(req)),
                    format!("e.g. {}", example(sig.name)),
                );
                ok = false;
            }
        }
        ok.then_some(Args { owner, map })
    }

    pub(super) fn allowed(&self, sig: &Signature) -> String {
        if sig.params.is_empty() {
            return "no arguments".into();
        }
        sig.params
            .iter()
            .map(|p| self.param_spelling(p))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Python names as written; TypeScript shows the camelCase alias too.
    pub(super) fn param_spelling(&self, p: &str) -> String {
        let camel = camel_case(p);
        match self.lang {
            Lang::TypeScript if camel != p => format!("{p}/{camel}"),
            _ => p.to_string(),
        }
    }

    pub(super) fn unknown_helper(&mut self, call: &Call, at: usize) {
        let suggestion = call
            .written
            .strip_prefix("mvm.")
            .map(helpers::snake_case)
            .and_then(|n| helpers::closest(&n, SIGNATURES.iter().map(|s| s.name)))
            .or_else(|| {
                // `os.getenv` and friends: suggest on the last segment only if close.
                let last = call.written.rsplit('.').next().unwrap_or("");
                helpers::closest(
                    &helpers::snake_case(last),
                    SIGNATURES.iter().map(|s| s.name),
                )
            });
        let hint = match suggestion {
            Some(s) => format!("did you mean {}?", self.spelled(s)),
            None => "only literals and the mvm helpers are understood; see the helper allowlist in the declarations docs".into(),
        };
        self.err(
            Code::EHelperUnknown,
            at,
            format!("`{}` is not an mvm helper", call.written),
            hint,
        );
    }

    pub(super) fn type_err(&mut self, args: &Args, param: &str, v: &Value, expected: &str) {
        let (owner, what) = (args.owner.clone(), v.kind.describe());
        let hint = if let Kind::Call(c) = &v.kind
            && helpers::signature(&c.helper).is_none()
        {
            self.unknown_helper(c, v.at);
            return;
        } else {
            format!("write {expected} here")
        };
        self.err(
            Code::EKwargType,
            v.at,
            format!(
                "`{}` of {owner}() must be {expected}, not {what}",
                self.param_spelling(param),
            ),
            hint,
        );
    }

    pub(super) fn str_of(&mut self, args: &Args, param: &str, v: &Value) -> Option<String> {
        match &v.kind {
            Kind::Str(s) => Some(s.clone()),
            _ => {
                self.type_err(args, param, v, "a string");
                None
            }
        }
    }

    pub(super) fn opt_str(&mut self, args: &Args, param: &str) -> Option<Option<String>> {
        match args.get(param) {
            None => Some(None),
            Some(v) => self.str_of(args, param, v).map(Some),
        }
    }

    pub(super) fn req_str(&mut self, args: &Args, param: &str) -> Option<String> {
        let v = args.get(param)?;
        self.str_of(args, param, v)
    }

    pub(super) fn opt_bool(&mut self, args: &Args, param: &str) -> Option<Option<bool>> {
        match args.get(param) {
            None => Some(None),
            Some(Value {
                kind: Kind::Bool(b),
                ..
            }) => Some(Some(*b)),
            Some(v) => {
                self.type_err(args, param, v, "a boolean (True/False, true/false)");
                None
            }
        }
    }

    pub(super) fn int_of(&mut self, args: &Args, param: &str, v: &Value) -> Option<i128> {
        match v.kind {
            Kind::Int(i) => Some(i),
            _ => {
                self.type_err(args, param, v, "an integer");
                None
            }
        }
    }

    pub(super) fn port_of(&mut self, args: &Args, param: &str, v: &Value) -> Option<u16> {
        let i = self.int_of(args, param, v)?;
        match u16::try_from(i) {
            Ok(p) => Some(p),
            Err(_) => {
                self.err(
                    Code::EInvalidValue,
                    v.at,
                    format!("port {i} of {}() is out of range", args.owner),
                    format!(
                        "ports are {PORT_MIN} to {} (0 for \"any free port\" on the host side)",
                        u16::MAX
                    ),
                );
                None
            }
        }
    }

    pub(super) fn str_list(
        &mut self,
        args: &Args,
        param: &str,
        v: &Value,
        ptr: &str,
    ) -> Option<Vec<String>> {
        let Kind::List(items) = &v.kind else {
            self.type_err(args, param, v, "a list of strings");
            return None;
        };
        self.span(ptr, v.at);
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            out.push(self.str_of(args, param, item)?);
            self.span(child(ptr, i.to_string()), item.at);
        }
        Some(out)
    }

    /// The call inside `v` if it is one of `helpers`, else a type error.
    pub(super) fn call_of<'a>(
        &mut self,
        args: &Args,
        param: &str,
        v: &'a Value,
        expected: &[&str],
    ) -> Option<&'a Call> {
        if let Kind::Call(c) = &v.kind
            && expected.contains(&c.helper.as_str())
        {
            return Some(c);
        }
        let names: Vec<String> = expected
            .iter()
            .map(|h| format!("{}(...)", self.spelled(h)))
            .collect();
        self.type_err(args, param, v, &names.join(" or "));
        None
    }

    /// `v` looked up in `choices` (the argument named by its `param`), else
    /// an error listing the accepted values.
    pub(super) fn one_of<T: Copy + PartialEq>(
        &mut self,
        args: &Args,
        v: &Value,
        choices: &Choices<T>,
    ) -> Option<T> {
        let param = choices.param;
        let s = self.str_of(args, param, v)?;
        if let Some(t) = choices.lookup(&s) {
            return Some(t);
        }
        let list: Vec<String> = choices
            .values
            .iter()
            .map(|(c, _)| format!("\"{c}\""))
            .collect();
        self.err(
            Code::EInvalidValue,
            v.at,
            format!(
                "`{}` of {}() is \"{s}\", which is not one of {}",
                self.param_spelling(param),
                args.owner,
                list.join(", ")
            ),
            format!("use one of {}", list.join(", ")),
        );
        None
    }
}

/// A `{guest: 8080}` / `{host: "h", port: 443}` dict read as the helper's keyword arguments.
pub(super) fn dict_as_call(v: &Value, helper: &str) -> Call {
    let Kind::Dict(entries) = &v.kind else {
        unreachable!("dict_as_call is only called on dicts")
    };
    Call {
        helper: helper.into(),
        written: format!("{helper} entry"),
        args: Vec::new(),
        kwargs: entries
            .iter()
            .map(|e| Kwarg {
                name: e.key.clone(),
                written: e.key.clone(),
                at: e.key_at,
                value: e.value.clone(),
            })
            .collect(),
    }
}

/// A short example call, for "missing argument" hints.
fn example(helper: &str) -> &'static str {
    match helper {
        "workload" => "mvm.workload(id=\"my-workload\")",
        "nix_packages" => "mvm.nix_packages([\"python312\", \"uv\"])",
        "oci_image" => "mvm.oci_image(\"debian:12-slim\", digest=\"sha256:...\")",
        "egress" => "mvm.egress([mvm.host_port(\"api.example.com\", 443)])",
        "host_port" => "mvm.host_port(\"api.example.com\", 443)",
        "port" => "mvm.port(8080)",
        "dns_resolver" => "mvm.dns_resolver(\"10.0.0.53\")",
        "literal" => "mvm.literal(\"value\")",
        "secret" => "mvm.secret(\"api-key\")",
        "entrypoint_function" => "mvm.entrypoint_function(module=\"app\", function=\"run\")",
        "entrypoint" => "mvm.entrypoint(command=[\"python\", \"/app/server.py\"])",
        "hook" => "mvm.hook([\"uv\", \"sync\", \"--frozen\"])",
        "addon" => "mvm.addon(name=\"tools\", path=\"addons/tools\")",
        _ => "see the helper allowlist in the declarations docs",
    }
}
