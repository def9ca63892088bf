//! The Python front end: parses with `ruff_python_parser`, finds the
//! module-level `@mvm.app(...)` function and `mvm.workload(...)` call, and
//! turns their arguments into [`crate::value`] trees. Nothing is imported or
//! evaluated: names, attribute reads and expressions are rejected.

use ruff_python_ast::{self as ast, Expr, InterpolatedStringElement, Number, Stmt, UnaryOp};
use ruff_text_size::Ranged;

use mvm_ir::Code;

use crate::diag::{Diag, LITERAL_HINT, MAX_DEPTH, too_deep};
use crate::helpers;
use crate::value::{Call, Declaration, Entry, Kind, Kwarg, Value};

/// Parses `source`; `Ok(None)` when it holds no `@mvm.app` function.
pub fn parse(source: &str) -> Result<Option<Declaration>, Vec<Diag>> {
    let parsed = ruff_python_parser::parse_module(source).map_err(|e| {
        vec![Diag::new(
            Code::ESyntax,
            e.location.start().to_usize(),
            format!("invalid Python syntax: {}", e.error),
            "fix the syntax error; the declaration file must parse as Python",
        )]
    })?;
    let mut found = Found::default();
    for stmt in &parsed.syntax().body {
        found.statement(stmt)?;
    }
    let Some((app, app_at, function)) = found.app else {
        return Ok(None);
    };
    Ok(Some(Declaration {
        app,
        app_at,
        function: Some(function),
        workload: found.workload,
    }))
}

#[derive(Default)]
struct Found {
    app: Option<(Call, usize, String)>,
    workload: Option<Call>,
}

fn at(node: &impl Ranged) -> usize {
    node.range().start().to_usize()
}

impl Found {
    fn statement(&mut self, stmt: &Stmt) -> Result<(), Vec<Diag>> {
        match stmt {
            Stmt::Expr(e) => {
                if let Expr::Call(call) = &*e.value
                    && let Some(name) = dotted(&call.func)
                    && name.starts_with("mvm.")
                {
                    // The in-process route prints the IR; statically it means nothing.
                    if name == "mvm.emit_json" {
                        return Ok(());
                    }
                    if name != "mvm.workload" {
                        return Err(vec![unknown_top_level(
                            &name,
                            at(&*e.value),
                            "mvm.workload",
                        )]);
                    }
                    if self.workload.is_some() {
                        return Err(vec![Diag::new(
                            Code::EKwargConflict,
                            at(&*e.value),
                            "mvm.workload(...) is called more than once",
                            "keep one mvm.workload(id=...) call per file",
                        )]);
                    }
                    self.workload = Some(convert_call(call, name, 0)?);
                }
                Ok(())
            }
            Stmt::FunctionDef(f) => {
                for dec in &f.decorator_list {
                    self.decorator(dec, f)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn decorator(
        &mut self,
        dec: &ast::Decorator,
        f: &ast::StmtFunctionDef,
    ) -> Result<(), Vec<Diag>> {
        let pos = at(&dec.expression);
        let call = match &dec.expression {
            Expr::Call(call) => call,
            other => {
                if dotted(other).as_deref() == Some("mvm.app") {
                    return Err(vec![Diag::new(
                        Code::EKwargType,
                        pos,
                        "@mvm.app needs its arguments: write @mvm.app(...)",
                        "e.g. @mvm.app(name=\"hello\", source=mvm.local_path(\".\"))",
                    )]);
                }
                return Ok(());
            }
        };
        let Some(name) = dotted(&call.func) else {
            return Ok(());
        };
        if !name.starts_with("mvm.") {
            return Ok(());
        }
        if name != "mvm.app" {
            return Err(vec![unknown_top_level(&name, pos, "mvm.app")]);
        }
        if let Some((_, _, first)) = &self.app {
            return Err(vec![Diag::new(
                Code::EAppsCount,
                at(dec),
                format!(
                    "a second @mvm.app function `{}`; `{first}` is already declared in this file",
                    f.name.id
                ),
                "declare exactly one app per file; move the other function into its own declaration file",
            )]);
        }
        self.app = Some((convert_call(call, name, 0)?, pos, f.name.id.to_string()));
        Ok(())
    }
}

/// A misspelt `mvm.*` call at the top level (`@mvm.ap(...)`, `mvm.worklaod(...)`).
fn unknown_top_level(name: &str, pos: usize, expected: &str) -> Diag {
    let seg = name.trim_start_matches("mvm.");
    let hint = match helpers::closest(seg, helpers::SIGNATURES.iter().map(|s| s.name)) {
        Some(s) => format!("did you mean mvm.{s}?"),
        None => format!("declarations use {expected}(...)"),
    };
    Diag::new(
        Code::EHelperUnknown,
        pos,
        format!("`{name}` is not an mvm helper"),
        hint,
    )
}

/// `mvm.secret` for a chain of names and attributes; `None` for anything else.
fn dotted(e: &Expr) -> Option<String> {
    match e {
        Expr::Name(n) => Some(n.id.to_string()),
        Expr::Attribute(a) => Some(format!("{}.{}", dotted(&a.value)?, a.attr.id)),
        _ => None,
    }
}

fn convert_call(call: &ast::ExprCall, written: String, depth: usize) -> Result<Call, Vec<Diag>> {
    // Only `mvm.<helper>` names an allowlisted helper; anything else keeps an
    // empty helper so lowering reports it as unknown under its written name.
    let helper = match written.strip_prefix("mvm.") {
        Some(h) if !h.contains('.') => h.to_string(),
        _ => String::new(),
    };
    let mut diags = Vec::new();
    let mut args = Vec::new();
    for a in call.arguments.args.iter() {
        if let Expr::Starred(s) = a {
            diags.push(not_literal(at(s), "`*` unpacking"));
            continue;
        }
        match convert(a, depth) {
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
        match convert(&kw.value, depth) {
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

fn convert(e: &Expr, depth: usize) -> Result<Value, Vec<Diag>> {
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
        Expr::List(l) => Kind::List(convert_all(&l.elts, depth + 1)?),
        Expr::Tuple(t) => Kind::List(convert_all(&t.elts, depth + 1)?),
        Expr::Dict(d) => Kind::Dict(dict(d, depth + 1)?),
        Expr::Call(c) => match dotted(&c.func) {
            Some(name) => Kind::Call(convert_call(c, name, depth + 1)?),
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
            let name = dotted(e).unwrap_or_else(|| "this attribute".into());
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

fn convert_all(items: &[Expr], depth: usize) -> Result<Vec<Value>, Vec<Diag>> {
    let mut out = Vec::with_capacity(items.len());
    let mut diags = Vec::new();
    for item in items {
        if let Expr::Starred(s) = item {
            diags.push(not_literal(at(s), "`*` unpacking"));
            continue;
        }
        match convert(item, depth) {
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

fn dict(d: &ast::ExprDict, depth: usize) -> Result<Vec<Entry>, Vec<Diag>> {
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
        match convert(&item.value, depth) {
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
