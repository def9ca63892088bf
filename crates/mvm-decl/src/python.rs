//! The Python front end: parses with `ruff_python_parser`, finds the
//! module-level `@mvm.app(...)` function and `mvm.workload(...)` call, and
//! turns their arguments into [`crate::value`] trees. Nothing is imported or
//! evaluated: names, attribute reads and expressions are rejected.
//!
//! The SDK may be imported in any form (`import mvm`, `import mvm as m`,
//! `from mvm import app, python_image as pi`, `from mvm import *`); module-
//! level import statements, read in order, say which local names are the
//! SDK's ([`crate::imports`]). A later `def`, `class`, assignment or other
//! import of the same name takes it back.

use ruff_python_ast::{
    self as ast, Expr, InterpolatedStringElement, Number, PySourceType, Stmt, UnaryOp,
};
use ruff_text_size::Ranged;

use mvm_ir::Code;

use crate::diag::{Diag, LITERAL_HINT, MAX_DEPTH, too_deep};
use crate::helpers;
use crate::imports::{self, SdkNames};
use crate::nesting;
use crate::python_uses;
use crate::value::{Call, Contents, Declaration, Entry, Kind, Kwarg, Value};

/// The Python SDK's module name.
const MODULE: &str = "mvm";

/// Parses `source` and finds its declaration, if any.
pub fn parse(source: &str) -> Result<Contents, Vec<Diag>> {
    let parsed = ruff_python_parser::parse_unchecked_source(source, PySourceType::Python);
    // Depth first: dropping or walking an over-deep tree recurses once per
    // level. A refused tree is leaked rather than dropped (bounded by the
    // input's size, and only for input that is refused anyway).
    if let Err(d) = nesting::python_brackets(parsed.tokens())
        .and_then(|()| python_uses::check_depth(parsed.syntax()))
    {
        std::mem::forget(parsed);
        return Err(vec![d]);
    }
    if let Some(e) = parsed.errors().first() {
        return Err(vec![Diag::new(
            Code::ESyntax,
            e.location.start().to_usize(),
            format!("invalid Python syntax: {}", e.error),
            "fix the syntax error; the declaration file must parse as Python",
        )]);
    }
    let module = parsed.syntax();
    let mut walk = Walk::default();
    for stmt in &module.body {
        walk.statement(stmt)?;
    }
    if let Some((app, app_at, function)) = walk.app {
        return Ok(Contents::Declaration(Box::new(Declaration {
            app,
            app_at,
            function: Some(function),
            workload: walk.workload,
        })));
    }
    let uses = python_uses::uses(module, &walk.names);
    Ok(match uses.sandbox {
        Some(at) => Contents::SandboxScript { at },
        None => Contents::Nothing { app_at: uses.app },
    })
}

/// What `from mvm import *` binds that the static reader cares about (the
/// SDK's `__all__` holds these and a few classes).
fn star_names() -> impl Iterator<Item = &'static str> {
    helpers::SIGNATURES
        .iter()
        .map(|s| s.name)
        .chain(["emit_json", "to_ir", "reset", "Sandbox"])
}

#[derive(Default)]
struct Walk {
    names: SdkNames,
    app: Option<(Call, usize, String)>,
    workload: Option<Call>,
}

fn at(node: &impl Ranged) -> usize {
    node.range().start().to_usize()
}

impl Walk {
    fn statement(&mut self, stmt: &Stmt) -> Result<(), Vec<Diag>> {
        match stmt {
            Stmt::Import(i) => {
                for alias in &i.names {
                    let name = alias.name.id.as_str();
                    let root = name.split('.').next().unwrap_or(name);
                    match &alias.asname {
                        // `import mvm.x as y` binds the submodule, not the SDK.
                        Some(local) if name == MODULE => self.names.bind_module(local.as_str()),
                        Some(local) => self.names.unbind(local.as_str()),
                        // `import mvm.x` binds `mvm` itself.
                        None if root == MODULE => self.names.bind_module(MODULE),
                        None => self.names.unbind(root),
                    }
                }
                Ok(())
            }
            Stmt::ImportFrom(f) => {
                let sdk = f.level == 0 && f.module.as_ref().is_some_and(|m| m.as_str() == MODULE);
                for alias in &f.names {
                    let name = alias.name.as_str();
                    if name == "*" {
                        if sdk {
                            for n in star_names() {
                                self.names.bind_member(n, n);
                            }
                        }
                        continue;
                    }
                    let local = alias.asname.as_ref().unwrap_or(&alias.name).as_str();
                    if sdk {
                        self.names.bind_member(local, name);
                    } else {
                        self.names.unbind(local);
                    }
                }
                Ok(())
            }
            Stmt::Expr(e) => {
                let Expr::Call(call) = &*e.value else {
                    return Ok(());
                };
                let Some(path) = dotted(&call.func) else {
                    return Ok(());
                };
                let Some(name) = self.names.resolve(&path) else {
                    return Ok(());
                };
                let written = imports::written(&path);
                match name.direct() {
                    // The in-process route prints the IR; statically it means nothing.
                    Some("emit_json") => Ok(()),
                    Some("workload") => {
                        if self.workload.is_some() {
                            return Err(vec![Diag::new(
                                Code::EKwargConflict,
                                at(&*e.value),
                                format!("{written}(...) is called more than once"),
                                "keep one mvm.workload(id=...) call per file",
                            )]);
                        }
                        self.workload = Some(convert_call(&self.names, call, &path, 0)?);
                        Ok(())
                    }
                    Some(_) => Err(vec![unknown_top_level(
                        &written,
                        at(&*e.value),
                        "mvm.workload",
                    )]),
                    // `Sandbox.create(...)`, `mvm.x.y(...)`: not a declaration.
                    None => Ok(()),
                }
            }
            Stmt::FunctionDef(f) => {
                // Decorators run before the name is bound.
                for dec in &f.decorator_list {
                    self.decorator(dec, f)?;
                }
                self.names.unbind(f.name.as_str());
                Ok(())
            }
            Stmt::ClassDef(c) => {
                self.names.unbind(c.name.as_str());
                Ok(())
            }
            Stmt::Assign(a) => {
                for t in &a.targets {
                    self.rebound(t);
                }
                Ok(())
            }
            Stmt::AnnAssign(a) => {
                self.rebound(&a.target);
                Ok(())
            }
            Stmt::AugAssign(a) => {
                self.rebound(&a.target);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// An assignment target that rebinds a module-level name.
    fn rebound(&mut self, target: &Expr) {
        match target {
            Expr::Name(n) => self.names.unbind(n.id.as_str()),
            Expr::Tuple(t) => t.elts.iter().for_each(|e| self.rebound(e)),
            Expr::List(l) => l.elts.iter().for_each(|e| self.rebound(e)),
            Expr::Starred(s) => self.rebound(&s.value),
            _ => {}
        }
    }

    fn decorator(
        &mut self,
        dec: &ast::Decorator,
        f: &ast::StmtFunctionDef,
    ) -> Result<(), Vec<Diag>> {
        let pos = at(&dec.expression);
        let (call, path) = match &dec.expression {
            Expr::Call(call) => match dotted(&call.func) {
                Some(path) => (call, path),
                None => return Ok(()),
            },
            other => {
                if let Some(path) = dotted(other)
                    && self.names.resolve(&path).as_ref().and_then(|r| r.direct()) == Some("app")
                {
                    let written = imports::written(&path);
                    return Err(vec![Diag::new(
                        Code::EKwargType,
                        pos,
                        format!("@{written} needs its arguments: write @{written}(...)"),
                        format!("e.g. @{written}(name=\"hello\")"),
                    )]);
                }
                return Ok(());
            }
        };
        let written = imports::written(&path);
        let Some(name) = self.names.resolve(&path) else {
            if imports::unimported_mvm(&self.names, &path) {
                return Err(vec![not_imported(&written, pos)]);
            }
            // A decorator of the file's own (even one called `app`).
            return Ok(());
        };
        if name.direct() != Some("app") {
            return Err(vec![unknown_top_level(&written, pos, "mvm.app")]);
        }
        if let Some((_, _, first)) = &self.app {
            return Err(vec![Diag::new(
                Code::EAppsCount,
                at(dec),
                format!(
                    "a second @{written} function `{}`; `{first}` is already declared in this file",
                    f.name.id
                ),
                "declare exactly one app per file; move the other function into its own declaration file",
            )]);
        }
        self.app = Some((
            convert_call(&self.names, call, &path, 0)?,
            pos,
            f.name.id.to_string(),
        ));
        Ok(())
    }
}

/// `@mvm.app(...)` in a file that never imports `mvm`.
fn not_imported(written: &str, pos: usize) -> Diag {
    Diag::new(
        Code::EHelperUnknown,
        pos,
        format!("`{written}` does not refer to the SDK: `mvm` is not imported in this file"),
        "add `import mvm` (or `from mvm import app`) at the top of the file",
    )
}

/// A misspelt SDK call at the top level (`@mvm.ap(...)`, `mvm.worklaod(...)`).
fn unknown_top_level(name: &str, pos: usize, expected: &str) -> Diag {
    let (prefix, seg) = match name.rsplit_once('.') {
        Some((p, s)) => (format!("{p}."), s),
        None => (String::new(), name),
    };
    let hint = match helpers::closest(seg, helpers::SIGNATURES.iter().map(|s| s.name)) {
        Some(s) => format!("did you mean {prefix}{s}?"),
        None => format!("declarations use {expected}(...)"),
    };
    Diag::new(
        Code::EHelperUnknown,
        pos,
        format!("`{name}` is not an mvm helper"),
        hint,
    )
}

/// The segments of a chain of names and attributes (`mvm.secret` →
/// `["mvm", "secret"]`); `None` for anything else. Iterative: chains may be
/// long.
fn dotted(e: &Expr) -> Option<Vec<String>> {
    let mut segments = Vec::new();
    let mut e = e;
    loop {
        match e {
            Expr::Name(n) => {
                segments.push(n.id.to_string());
                segments.reverse();
                return Some(segments);
            }
            Expr::Attribute(a) => {
                segments.push(a.attr.id.to_string());
                e = &a.value;
            }
            _ => return None,
        }
    }
}

fn convert_call(
    names: &SdkNames,
    call: &ast::ExprCall,
    path: &[String],
    depth: usize,
) -> Result<Call, Vec<Diag>> {
    let written = imports::written(path);
    // Only a name that resolves through the SDK's imports is a helper;
    // anything else keeps an empty helper so lowering reports it as unknown
    // under its written name.
    let helper = match names.resolve(path) {
        Some(r) => r.direct().unwrap_or_default().to_string(),
        None if imports::unimported_mvm(names, path) => {
            return Err(vec![not_imported(&written, at(call))]);
        }
        None => String::new(),
    };
    let mut diags = Vec::new();
    let mut args = Vec::new();
    for a in call.arguments.args.iter() {
        if let Expr::Starred(s) = a {
            diags.push(not_literal(at(s), "`*` unpacking"));
            continue;
        }
        match convert(names, a, depth) {
            Ok(v) => args.push(v),
            Err(mut d) => diags.append(&mut d),
        }
    }
    let mut kwargs = Vec::new();
    for kw in call.arguments.keywords.iter() {
        let Some(name) = &kw.arg else {
            diags.push(not_literal(at(kw), "`**` unpacking"));
            continue;
        };
        match convert(names, &kw.value, depth) {
            Ok(value) => kwargs.push(Kwarg {
                name: name.id.to_string(),
                written: name.id.to_string(),
                at: at(kw),
                value,
            }),
            Err(mut d) => diags.append(&mut d),
        }
    }
    if diags.is_empty() {
        Ok(Call {
            helper,
            written,
            args,
            kwargs,
        })
    } else {
        Err(diags)
    }
}

fn not_literal(pos: usize, what: &str) -> Diag {
    Diag::new(
        Code::ENotLiteral,
        pos,
        format!("{what} is not a literal value"),
        LITERAL_HINT,
    )
}

fn convert(names: &SdkNames, e: &Expr, depth: usize) -> Result<Value, Vec<Diag>> {
    let pos = at(e);
    if depth > MAX_DEPTH {
        return Err(vec![too_deep(pos)]);
    }
    let kind = match e {
        Expr::StringLiteral(s) => Kind::Str(s.value.to_str().to_string()),
        Expr::FString(f) => Kind::Str(fstring(f)?),
        Expr::BytesLiteral(_) => {
            return Err(vec![Diag::new(
                Code::EKwargType,
                pos,
                "a bytes literal is not a string",
                "drop the b prefix: declarations take text strings",
            )]);
        }
        Expr::NumberLiteral(n) => match &n.value {
            Number::Int(i) => Kind::Int(int_value(i, pos)?),
            _ => {
                return Err(vec![Diag::new(
                    Code::EKwargType,
                    pos,
                    "only whole numbers are accepted here",
                    "write an integer, or a string such as \"3.12\" for versions",
                )]);
            }
        },
        Expr::UnaryOp(u) if u.op == UnaryOp::USub => match &*u.operand {
            Expr::NumberLiteral(ast::ExprNumberLiteral {
                value: Number::Int(i),
                ..
            }) => Kind::Int(-int_value(i, pos)?),
            _ => return Err(vec![not_literal(pos, "this expression")]),
        },
        Expr::BooleanLiteral(b) => Kind::Bool(b.value),
        Expr::NoneLiteral(_) => Kind::Null,
        Expr::List(l) => Kind::List(convert_all(names, &l.elts, depth + 1)?),
        Expr::Tuple(t) => Kind::List(convert_all(names, &t.elts, depth + 1)?),
        Expr::Dict(d) => Kind::Dict(dict(names, d, depth + 1)?),
        Expr::Call(c) => match dotted(&c.func) {
            Some(path) => Kind::Call(convert_call(names, c, &path, depth + 1)?),
            None => return Err(vec![not_literal(pos, "this call")]),
        },
        Expr::Name(n) => {
            return Err(vec![Diag::new(
                Code::ENotLiteral,
                pos,
                format!("`{}` is a variable, not a literal value", n.id),
                format!(
                    "{LITERAL_HINT}; the value of `{}` is only known when the file runs",
                    n.id
                ),
            )]);
        }
        Expr::Attribute(_) => {
            let name = dotted(e).map_or_else(|| "this attribute".into(), |p| imports::written(&p));
            return Err(vec![not_literal(
                pos,
                &format!("the attribute read `{name}`"),
            )]);
        }
        Expr::BinOp(_) | Expr::BoolOp(_) | Expr::UnaryOp(_) | Expr::Compare(_) | Expr::If(_) => {
            return Err(vec![not_literal(pos, "an expression with operators")]);
        }
        Expr::ListComp(_) | Expr::SetComp(_) | Expr::DictComp(_) | Expr::Generator(_) => {
            return Err(vec![not_literal(pos, "a comprehension")]);
        }
        Expr::Subscript(_) => return Err(vec![not_literal(pos, "a subscript")]),
        Expr::Lambda(_) => return Err(vec![not_literal(pos, "a lambda")]),
        _ => return Err(vec![not_literal(pos, "this expression")]),
    };
    Ok(Value { kind, at: pos })
}

fn int_value(i: &ast::Int, pos: usize) -> Result<i128, Vec<Diag>> {
    i.as_i64().map(i128::from).ok_or_else(|| {
        vec![Diag::new(
            Code::EKwargType,
            pos,
            format!("the integer {i} is too large"),
            "use a value within the field's documented range",
        )]
    })
}

fn convert_all(names: &SdkNames, items: &[Expr], depth: usize) -> Result<Vec<Value>, Vec<Diag>> {
    let mut out = Vec::with_capacity(items.len());
    let mut diags = Vec::new();
    for item in items {
        if let Expr::Starred(s) = item {
            diags.push(not_literal(at(s), "`*` unpacking"));
            continue;
        }
        match convert(names, item, depth) {
            Ok(v) => out.push(v),
            Err(mut d) => diags.append(&mut d),
        }
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

fn dict(names: &SdkNames, d: &ast::ExprDict, depth: usize) -> Result<Vec<Entry>, Vec<Diag>> {
    let mut out: Vec<Entry> = Vec::with_capacity(d.items.len());
    let mut diags = Vec::new();
    for item in &d.items {
        let key = match &item.key {
            None => {
                diags.push(not_literal(at(&item.value), "`**` unpacking"));
                continue;
            }
            Some(Expr::StringLiteral(s)) => s.value.to_str().to_string(),
            Some(Expr::Name(n)) => {
                diags.push(Diag::new(
                    Code::ENotLiteral,
                    at(n),
                    format!("the dict key `{}` is a variable, not a literal", n.id),
                    "write the key as a string literal, e.g. \"API_KEY\"",
                ));
                continue;
            }
            Some(k) => {
                diags.push(Diag::new(
                    Code::EKwargType,
                    at(k),
                    "dict keys must be string literals",
                    "write the key in quotes",
                ));
                continue;
            }
        };
        let key_at = item.key.as_ref().map_or(0, at);
        if out.iter().any(|e| e.key == key) {
            diags.push(Diag::new(
                Code::EKwargConflict,
                key_at,
                format!("the key \"{key}\" appears twice"),
                "give each key once",
            ));
            continue;
        }
        match convert(names, &item.value, depth) {
            Ok(value) => out.push(Entry { key, key_at, value }),
            Err(mut e) => diags.append(&mut e),
        }
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

/// An f-string is a literal only when nothing is interpolated.
fn fstring(f: &ast::ExprFString) -> Result<String, Vec<Diag>> {
    let mut out = String::new();
    for part in f.value.iter() {
        match part {
            ast::FStringPart::Literal(s) => out.push_str(&s.value),
            ast::FStringPart::FString(fs) => {
                for el in fs.elements.iter() {
                    match el {
                        InterpolatedStringElement::Literal(l) => out.push_str(&l.value),
                        InterpolatedStringElement::Interpolation(i) => {
                            return Err(vec![Diag::new(
                                Code::ENotLiteral,
                                at(i),
                                "an f-string with an interpolated `{...}` is not a literal value",
                                "write the final string out literally; interpolation would need the file to run",
                            )]);
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}
