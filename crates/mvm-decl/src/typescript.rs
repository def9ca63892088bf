//! The TypeScript front end: parses with `oxc_parser`, finds the module-level
//! `mvm.app({...})(fn)` (usually `export const f = mvm.app({...})(...)`) and
//! `mvm.workload({...})`, and turns their arguments into [`crate::value`]
//! trees. Nothing is run; identifiers, spreads, computed keys and template
//! interpolation are rejected.
//!
//! A helper's trailing object literal is its options (keyword arguments);
//! helper and option names are accepted in snake_case or camelCase.

use oxc_allocator::Allocator;
use oxc_ast::ast::{
    Argument, ArrayExpressionElement, Declaration as TsDeclaration, Expression, ObjectPropertyKind,
    PropertyKey, Statement, UnaryOperator,
};
use oxc_span::{GetSpan, SourceType};

use mvm_ir::Code;

use crate::diag::{Diag, LITERAL_HINT, MAX_DEPTH, too_deep};
use crate::helpers;
use crate::value::{Call, Declaration, Entry, Kind, Kwarg, Value};

/// Parses `source`; `Ok(None)` when it holds no `mvm.app(...)`.
pub fn parse(source: &str) -> Result<Option<Declaration>, Vec<Diag>> {
    let allocator = Allocator::default();
    let ret = oxc_parser::Parser::new(&allocator, source, SourceType::ts()).parse();
    if let Some(first) = ret.diagnostics.first() {
        let at = first.labels.first().map_or(0, |l| l.offset() as usize);
        return Err(vec![Diag::new(
            Code::ESyntax,
            at,
            format!("invalid TypeScript syntax: {}", first.message),
            "fix the syntax error; the declaration file must parse as TypeScript",
        )]);
    }
    let mut found = Found::default();
    for stmt in &ret.program.body {
        found.statement(stmt)?;
    }
    Ok(found.app.map(|(app, app_at, function)| Declaration {
        app,
        app_at,
        function,
        workload: found.workload,
    }))
}

#[derive(Default)]
struct Found {
    app: Option<(Call, usize, Option<String>)>,
    workload: Option<Call>,
}

fn at(node: &impl GetSpan) -> usize {
    node.span().start as usize
}

/// Parentheses and type assertions (`as const`, `satisfies T`, `x!`) do not change a value.
fn unwrap<'e, 'a>(mut e: &'e Expression<'a>) -> &'e Expression<'a> {
    loop {
        e = match e {
            Expression::ParenthesizedExpression(p) => &p.expression,
            Expression::TSAsExpression(x) => &x.expression,
            Expression::TSSatisfiesExpression(x) => &x.expression,
            Expression::TSNonNullExpression(x) => &x.expression,
            _ => return e,
        }
    }
}

/// `mvm.localPath` for a chain of identifiers and static member reads.
fn dotted(e: &Expression) -> Option<String> {
    match unwrap(e) {
        Expression::Identifier(i) => Some(i.name.to_string()),
        Expression::StaticMemberExpression(m) => {
            Some(format!("{}.{}", dotted(&m.object)?, m.property.name))
        }
        _ => None,
    }
}

/// The helper's snake_case name for a two-segment `mvm.<name>`.
fn mvm_helper(name: &str) -> Option<String> {
    name.strip_prefix("mvm.")
        .filter(|h| !h.contains('.'))
        .map(helpers::snake_case)
}

impl Found {
    fn statement(&mut self, stmt: &Statement) -> Result<(), Vec<Diag>> {
        match stmt {
            Statement::ExpressionStatement(s) => self.expression(&s.expression, None),
            Statement::VariableDeclaration(v) => self.variables(v),
            Statement::ExportNamedDeclaration(_) => Ok(()),
            Statement::ExportDeclaration(e) => match &e.declaration {
                TsDeclaration::VariableDeclaration(v) => self.variables(v),
                _ => Ok(()),
            },
            Statement::ExportDefaultDeclaration(d) => match d.declaration.as_expression() {
                Some(e) => self.expression(e, None),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    fn variables(&mut self, v: &oxc_ast::ast::VariableDeclaration) -> Result<(), Vec<Diag>> {
        for d in &v.declarations {
            if let Some(init) = &d.init {
                self.expression(init, d.id.get_identifier_name().map(|n| n.to_string()))?;
            }
        }
        Ok(())
    }

    fn expression(&mut self, e: &Expression, binding: Option<String>) -> Result<(), Vec<Diag>> {
        let Expression::CallExpression(outer) = unwrap(e) else {
            return Ok(());
        };
        // `mvm.app({...})(fn)`: the inner call is the declaration, the outer applies it.
        if let Expression::CallExpression(inner) = unwrap(&outer.callee)
            && let Some(name) = dotted(&inner.callee)
            && let Some(helper) = mvm_helper(&name)
        {
            if helper != "app" {
                return Err(vec![unknown_top_level(&name, at(&**inner))]);
            }
            let function = binding.or_else(|| function_name(outer.arguments.first()));
            return self.app(inner, name, function);
        }
        let Some(name) = dotted(&outer.callee) else {
            return Ok(());
        };
        let Some(helper) = mvm_helper(&name) else {
            return Ok(());
        };
        match helper.as_str() {
            "app" => self.app(outer, name, binding),
            "workload" => {
                if self.workload.is_some() {
                    return Err(vec![Diag::new(
                        Code::EKwargConflict,
                        at(&**outer),
                        "mvm.workload(...) is called more than once",
                        "keep one mvm.workload({ id: ... }) call per file",
                    )]);
                }
                self.workload = Some(convert_call(outer, name, 0)?);
                Ok(())
            }
            // The in-process route prints the IR; statically it means nothing.
            "emit_json" => Ok(()),
            _ => Err(vec![unknown_top_level(&name, at(&**outer))]),
        }
    }

    fn app(
        &mut self,
        call: &oxc_ast::ast::CallExpression,
        name: String,
        function: Option<String>,
    ) -> Result<(), Vec<Diag>> {
        let pos = at(call);
        if self.app.is_some() {
            return Err(vec![Diag::new(
                Code::EAppsCount,
                pos,
                "a second mvm.app(...) in this file",
                "declare exactly one app per file; move the other into its own declaration file",
            )]);
        }
        self.app = Some((convert_call(call, name, 0)?, pos, function));
        Ok(())
    }
}

/// The name of a named function expression passed to the app, if any.
fn function_name(arg: Option<&Argument>) -> Option<String> {
    match arg?.as_expression().map(unwrap)? {
        Expression::FunctionExpression(f) => f.id.as_ref().map(|id| id.name.to_string()),
        _ => None,
    }
}

fn unknown_top_level(name: &str, pos: usize) -> Diag {
    let seg = helpers::snake_case(name.trim_start_matches("mvm."));
    let hint = match helpers::closest(&seg, ["app", "workload"]) {
        Some(s) => format!("did you mean mvm.{s}?"),
        None => "declarations use mvm.app({...})(fn) and mvm.workload({ id })".into(),
    };
    Diag::new(
        Code::EHelperUnknown,
        pos,
        format!("`{name}` is not an mvm helper"),
        hint,
    )
}

fn not_literal(pos: usize, what: &str) -> Diag {
    Diag::new(
        Code::ENotLiteral,
        pos,
        format!("{what} is not a literal value"),
        LITERAL_HINT,
    )
}

fn convert_call(
    call: &oxc_ast::ast::CallExpression,
    written: String,
    depth: usize,
) -> Result<Call, Vec<Diag>> {
    // Only `mvm.<helper>` names an allowlisted helper; anything else keeps an
    // empty helper so lowering reports it under its written name.
    let helper = mvm_helper(&written).unwrap_or_default();
    let mut diags = Vec::new();
    let mut args = Vec::new();
    let mut kwargs = Vec::new();
    let last = call.arguments.len().saturating_sub(1);
    for (i, arg) in call.arguments.iter().enumerate() {
        let Some(e) = arg.as_expression() else {
            diags.push(not_literal(at(arg), "a `...` spread"));
            continue;
        };
        if i == last
            && let Expression::ObjectExpression(o) = unwrap(e)
        {
            // The trailing options object: its properties are keyword arguments.
            match object(o, depth) {
                Ok(entries) => kwargs.extend(entries.into_iter().map(|en| Kwarg {
                    name: helpers::snake_case(&en.key),
                    written: en.key,
                    at: en.key_at,
                    value: en.value,
                })),
                Err(mut d) => diags.append(&mut d),
            }
            continue;
        }
        match convert(e, depth) {
            Ok(v) => args.push(v),
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

fn convert(e: &Expression, depth: usize) -> Result<Value, Vec<Diag>> {
    let e = unwrap(e);
    let pos = at(e);
    if depth > MAX_DEPTH {
        return Err(vec![too_deep(pos)]);
    }
    let kind = match e {
        Expression::StringLiteral(s) => Kind::Str(s.value.to_string()),
        Expression::TemplateLiteral(t) => {
            if let Some(first) = t.expressions.first() {
                return Err(vec![Diag::new(
                    Code::ENotLiteral,
                    at(first),
                    "a template literal with an interpolated `${...}` is not a literal value",
                    "write the final string out literally; interpolation would need the file to run",
                )]);
            }
            let cooked = t.quasis.first().and_then(|q| q.value.cooked.as_ref());
            match cooked {
                Some(s) => Kind::Str(s.to_string()),
                None if t.quasis.is_empty() => Kind::Str(String::new()),
                None => {
                    return Err(vec![Diag::new(
                        Code::EKwargType,
                        pos,
                        "this template literal holds an invalid escape sequence",
                        "use a plain string literal",
                    )]);
                }
            }
        }
        Expression::NumericLiteral(n) => Kind::Int(integer(n.value, pos)?),
        Expression::UnaryExpression(u) if u.operator == UnaryOperator::UnaryNegation => {
            match unwrap(&u.argument) {
                Expression::NumericLiteral(n) => Kind::Int(-integer(n.value, pos)?),
                _ => return Err(vec![not_literal(pos, "this expression")]),
            }
        }
        Expression::BooleanLiteral(b) => Kind::Bool(b.value),
        Expression::NullLiteral(_) => Kind::Null,
        Expression::Identifier(i) if i.name == "undefined" => Kind::Null,
        Expression::ArrayExpression(a) => {
            let mut items = Vec::with_capacity(a.elements.len());
            let mut diags = Vec::new();
            for el in &a.elements {
                let item = match el {
                    ArrayExpressionElement::SpreadElement(s) => {
                        Err(vec![not_literal(at(&**s), "a `...` spread")])
                    }
                    ArrayExpressionElement::Elision(h) => {
                        Err(vec![not_literal(at(&**h), "an array hole")])
                    }
                    _ => el.as_expression().map_or_else(
                        || Err(vec![not_literal(pos, "this element")]),
                        |x| convert(x, depth + 1),
                    ),
                };
                match item {
                    Ok(v) => items.push(v),
                    Err(mut d) => diags.append(&mut d),
                }
            }
            if !diags.is_empty() {
                return Err(diags);
            }
            Kind::List(items)
        }
        Expression::ObjectExpression(o) => Kind::Dict(object(o, depth + 1)?),
        Expression::CallExpression(c) => match dotted(&c.callee) {
            Some(name) => Kind::Call(convert_call(c, name, depth + 1)?),
            None => return Err(vec![not_literal(pos, "this call")]),
        },
        Expression::Identifier(i) => {
            return Err(vec![Diag::new(
                Code::ENotLiteral,
                pos,
                format!("`{}` is a variable, not a literal value", i.name),
                format!(
                    "{LITERAL_HINT}; the value of `{}` is only known when the file runs",
                    i.name
                ),
            )]);
        }
        Expression::StaticMemberExpression(_) | Expression::ComputedMemberExpression(_) => {
            let name = dotted(e).unwrap_or_else(|| "this member".into());
            return Err(vec![not_literal(
                pos,
                &format!("the property read `{name}`"),
            )]);
        }
        Expression::BinaryExpression(_)
        | Expression::LogicalExpression(_)
        | Expression::UnaryExpression(_)
        | Expression::ConditionalExpression(_) => {
            return Err(vec![not_literal(pos, "an expression with operators")]);
        }
        Expression::ArrowFunctionExpression(_) | Expression::FunctionExpression(_) => {
            return Err(vec![not_literal(pos, "a function")]);
        }
        _ => return Err(vec![not_literal(pos, "this expression")]),
    };
    Ok(Value { kind, at: pos })
}

/// JavaScript numbers are doubles; only whole numbers in the safe range count as integers.
fn integer(v: f64, pos: usize) -> Result<i128, Vec<Diag>> {
    const SAFE: f64 = 9_007_199_254_740_991.0;
    if v.fract() == 0.0 && v.abs() <= SAFE {
        Ok(v as i128)
    } else {
        Err(vec![Diag::new(
            Code::EKwargType,
            pos,
            format!("{v} is not a whole number in range"),
            "write an integer, or a string such as \"3.12\" for versions",
        )])
    }
}

fn object(o: &oxc_ast::ast::ObjectExpression, depth: usize) -> Result<Vec<Entry>, Vec<Diag>> {
    let mut out: Vec<Entry> = Vec::with_capacity(o.properties.len());
    let mut diags = Vec::new();
    for prop in &o.properties {
        let p = match prop {
            ObjectPropertyKind::ObjectProperty(p) => p,
            ObjectPropertyKind::SpreadProperty(s) => {
                diags.push(not_literal(at(&**s), "a `...` spread"));
                continue;
            }
        };
        let key_at = at(&p.key);
        if p.computed {
            diags.push(not_literal(key_at, "a computed `[key]`"));
            continue;
        }
        if p.shorthand {
            diags.push(Diag::new(
                Code::ENotLiteral,
                key_at,
                "a shorthand property refers to a variable, not a literal value",
                "write the property out as `key: value` with a literal value",
            ));
            continue;
        }
        if p.method || p.kind != oxc_ast::ast::PropertyKind::Init {
            diags.push(not_literal(key_at, "a method or accessor"));
            continue;
        }
        let key = match &p.key {
            PropertyKey::StaticIdentifier(id) => id.name.to_string(),
            PropertyKey::StringLiteral(s) => s.value.to_string(),
            _ => {
                diags.push(Diag::new(
                    Code::EKwargType,
                    key_at,
                    "object keys must be names or string literals",
                    "write the key as a name or in quotes",
                ));
                continue;
            }
        };
        if out.iter().any(|e| e.key == key) {
            diags.push(Diag::new(
                Code::EKwargConflict,
                key_at,
                format!("the key \"{key}\" appears twice"),
                "give each key once",
            ));
            continue;
        }
        match convert(&p.value, depth) {
            Ok(value) => out.push(Entry { key, key_at, value }),
            Err(mut d) => diags.append(&mut d),
        }
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}
