//! The TypeScript front end: parses with `oxc_parser`, finds the module-level
//! `mvm.app({...})(fn)` (usually `export const f = mvm.app({...})(...)`) and
//! `mvm.workload({...})`, and turns their arguments into [`crate::value`]
//! trees. Nothing is run; identifiers, spreads, computed keys and template
//! interpolation are rejected.
//!
//! The SDK may be imported in any form: `import * as m from "mvm-sdk"`,
//! `import { app, pythonImage as pi } from "mvm-sdk"`, a default import
//! (`import mvm from "mvm-sdk"`, taken as the namespace), `import m =
//! require("mvm-sdk")`, or a module-level `const m = require("mvm-sdk")` /
//! `await import("mvm-sdk")` (also destructured). `npm:mvm-sdk[@version]`
//! names the same package. Type-only imports bind nothing.
//!
//! A helper's trailing object literal is its options (keyword arguments);
//! helper and option names are accepted in snake_case or camelCase.

use oxc_allocator::Allocator;
use oxc_ast::ast::{
    Argument, ArrayExpressionElement, BindingPattern, Declaration as TsDeclaration, Expression,
    ImportDeclarationSpecifier, ImportOrExportKind, ObjectPropertyKind, PropertyKey, Statement,
    TSModuleReference, UnaryOperator, VariableDeclaration,
};
use oxc_span::{GetSpan, SourceType};

use mvm_ir::Code;

use crate::diag::{Diag, LITERAL_HINT, MAX_DEPTH, too_deep};
use crate::helpers;
use crate::imports::{self, SdkNames};
use crate::nesting;
use crate::typescript_uses;
use crate::value::{Call, Contents, Declaration, Entry, Kind, Kwarg, Value};

/// The TypeScript SDK's package name.
const PACKAGE: &str = "mvm-sdk";

/// `"mvm-sdk"`, and Deno's `"npm:mvm-sdk"` / `"npm:mvm-sdk@0.1.0"`.
fn is_sdk(specifier: &str) -> bool {
    let name = specifier.strip_prefix("npm:").unwrap_or(specifier);
    name == PACKAGE
        || name
            .strip_prefix(PACKAGE)
            .is_some_and(|v| v.starts_with('@'))
}

/// Parses `source` and finds its declaration, if any.
pub fn parse(source: &str) -> Result<Contents, Vec<Diag>> {
    // The parser recurses on the stack without a limit: refuse over-deep
    // input before it sees it.
    nesting::scan_typescript(source).map_err(|d| vec![d])?;
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
    let mut walk = Walk::default();
    // Imports are hoisted: every module-level import counts, wherever it is.
    for stmt in &ret.program.body {
        walk.import(stmt);
    }
    let uses = typescript_uses::uses(&ret.program, &walk.names).map_err(|d| vec![d])?;
    for stmt in &ret.program.body {
        walk.statement(stmt)?;
    }
    if let Some((app, app_at, function)) = walk.app {
        return Ok(Contents::Declaration(Box::new(Declaration {
            app,
            app_at,
            function,
            workload: walk.workload,
        })));
    }
    // `app` used anywhere without a module-level declaration: never a
    // recording script (that would run the file on the host).
    Ok(match (uses.app, uses.sandbox) {
        (None, Some(at)) => Contents::SandboxScript { at },
        (app_at, _) => Contents::Nothing { app_at },
    })
}

#[derive(Default)]
struct Walk {
    names: SdkNames,
    app: Option<(Call, usize, Option<String>)>,
    workload: Option<Call>,
}

fn at(node: &impl GetSpan) -> usize {
    node.span().start as usize
}

/// Parentheses and type assertions (`as const`, `satisfies T`, `x!`) do not change a value.
pub(crate) fn unwrap<'e, 'a>(mut e: &'e Expression<'a>) -> &'e Expression<'a> {
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

/// The segments of a chain of identifiers and static member reads
/// (`mvm.localPath` → `["mvm", "localPath"]`, also `mvm["app"]`); `None`
/// for anything else. Iterative: chains may be long.
fn dotted(e: &Expression) -> Option<Vec<String>> {
    let mut segments = Vec::new();
    let mut e = e;
    loop {
        match unwrap(e) {
            Expression::Identifier(i) => {
                segments.push(i.name.to_string());
                segments.reverse();
                return Some(segments);
            }
            Expression::StaticMemberExpression(m) => {
                segments.push(m.property.name.to_string());
                e = &m.object;
            }
            Expression::ComputedMemberExpression(m) => match unwrap(&m.expression) {
                Expression::StringLiteral(s) => {
                    segments.push(s.value.to_string());
                    e = &m.object;
                }
                _ => return None,
            },
            _ => return None,
        }
    }
}

/// `require("mvm-sdk")` or `await import("mvm-sdk")`.
fn requires_sdk(e: &Expression) -> bool {
    match unwrap(e) {
        Expression::AwaitExpression(a) => requires_sdk(&a.argument),
        Expression::ImportExpression(i) => {
            matches!(unwrap(&i.source), Expression::StringLiteral(s) if is_sdk(&s.value))
        }
        Expression::CallExpression(c) => {
            matches!(unwrap(&c.callee), Expression::Identifier(i) if i.name == "require")
                && c.arguments.len() == 1
                && matches!(
                    c.arguments[0].as_expression().map(unwrap),
                    Some(Expression::StringLiteral(s)) if is_sdk(&s.value)
                )
        }
        _ => false,
    }
}

impl Walk {
    /// Records the SDK names a module-level statement binds.
    fn import(&mut self, stmt: &Statement) {
        match stmt {
            Statement::ImportDeclaration(d) => {
                if d.import_kind == ImportOrExportKind::Type || !is_sdk(&d.source.value) {
                    return;
                }
                for spec in d.specifiers.iter().flatten() {
                    match spec {
                        ImportDeclarationSpecifier::ImportSpecifier(s) => {
                            if s.import_kind == ImportOrExportKind::Type {
                                continue;
                            }
                            let imported = s.imported.name();
                            if imported == "default" {
                                self.names.bind_module(&s.local.name);
                            } else {
                                self.names.bind_member(&s.local.name, &imported);
                            }
                        }
                        // The SDK has no default export; a default import
                        // is read as the namespace, never as "not the SDK".
                        ImportDeclarationSpecifier::ImportDefaultSpecifier(s) => {
                            self.names.bind_module(&s.local.name)
                        }
                        ImportDeclarationSpecifier::ImportNamespaceSpecifier(s) => {
                            self.names.bind_module(&s.local.name)
                        }
                    }
                }
            }
            Statement::TSImportEqualsDeclaration(d) => {
                if d.import_kind != ImportOrExportKind::Type
                    && let TSModuleReference::ExternalModuleReference(r) = &d.module_reference
                    && is_sdk(&r.expression.value)
                {
                    self.names.bind_module(&d.id.name);
                }
            }
            Statement::VariableDeclaration(v) => self.required(v),
            Statement::ExportDeclaration(e) => {
                if let TsDeclaration::VariableDeclaration(v) = &e.declaration {
                    self.required(v);
                }
            }
            _ => {}
        }
    }

    /// `const m = require("mvm-sdk")`, `const { app, Sandbox: S } = await import("mvm-sdk")`.
    fn required(&mut self, v: &VariableDeclaration) {
        for d in &v.declarations {
            let Some(init) = &d.init else { continue };
            if !requires_sdk(init) {
                continue;
            }
            match &d.id {
                BindingPattern::BindingIdentifier(id) => self.names.bind_module(&id.name),
                BindingPattern::ObjectPattern(o) => {
                    for p in &o.properties {
                        if let (Some(key), Some(local)) =
                            (p.key.static_name(), p.value.get_binding_identifier())
                            && !p.computed
                        {
                            self.names.bind_member(&local.name, &key);
                        }
                    }
                }
                _ => {}
            }
        }
    }

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

    fn variables(&mut self, v: &VariableDeclaration) -> Result<(), Vec<Diag>> {
        for d in &v.declarations {
            if let Some(init) = &d.init {
                self.expression(init, d.id.get_identifier_name().map(|n| n.to_string()))?;
            }
        }
        Ok(())
    }

    /// The helper a callee path names through the SDK's imports (snake_case).
    fn helper(&self, path: &[String]) -> Option<Option<String>> {
        self.names
            .resolve(path)
            .map(|r| r.direct().map(helpers::snake_case))
    }

    fn expression(&mut self, e: &Expression, binding: Option<String>) -> Result<(), Vec<Diag>> {
        let Expression::CallExpression(outer) = unwrap(e) else {
            return Ok(());
        };
        // `mvm.app({...})(fn)`: the inner call is the declaration, the outer applies it.
        if let Expression::CallExpression(inner) = unwrap(&outer.callee)
            && let Some(path) = dotted(&inner.callee)
        {
            match self.helper(&path) {
                Some(Some(h)) if h == "app" => {
                    let function = binding.or_else(|| function_name(outer.arguments.first()));
                    return self.app(inner, &path, function);
                }
                Some(Some(_)) => {
                    return Err(vec![unknown_top_level(
                        &imports::written(&path),
                        at(&**inner),
                    )]);
                }
                None if imports::unimported_mvm(&self.names, &path) => {
                    return Err(vec![not_imported(&imports::written(&path), at(&**inner))]);
                }
                _ => {}
            }
        }
        let Some(path) = dotted(&outer.callee) else {
            return Ok(());
        };
        let helper = match self.helper(&path) {
            Some(Some(h)) => h,
            // `Sandbox.create(...)`, `m.x.y(...)`: not a declaration.
            Some(None) => return Ok(()),
            None if imports::unimported_mvm(&self.names, &path) => {
                return Err(vec![not_imported(&imports::written(&path), at(&**outer))]);
            }
            None => return Ok(()),
        };
        let written = imports::written(&path);
        match helper.as_str() {
            "app" => self.app(outer, &path, binding),
            "workload" => {
                if self.workload.is_some() {
                    return Err(vec![Diag::new(
                        Code::EKwargConflict,
                        at(&**outer),
                        format!("{written}(...) is called more than once"),
                        "keep one mvm.workload({ id: ... }) call per file",
                    )]);
                }
                self.workload = Some(convert_call(&self.names, outer, &path, 0)?);
                Ok(())
            }
            // The in-process route prints the IR; statically it means nothing.
            "emit_json" => Ok(()),
            _ => Err(vec![unknown_top_level(&written, at(&**outer))]),
        }
    }

    fn app(
        &mut self,
        call: &oxc_ast::ast::CallExpression,
        path: &[String],
        function: Option<String>,
    ) -> Result<(), Vec<Diag>> {
        let pos = at(call);
        if self.app.is_some() {
            return Err(vec![Diag::new(
                Code::EAppsCount,
                pos,
                format!("a second {}(...) in this file", imports::written(path)),
                "declare exactly one app per file; move the other into its own declaration file",
            )]);
        }
        self.app = Some((convert_call(&self.names, call, path, 0)?, pos, function));
        Ok(())
    }
}

/// `mvm.app(...)` in a file that never imports `mvm`.
fn not_imported(written: &str, pos: usize) -> Diag {
    Diag::new(
        Code::EHelperUnknown,
        pos,
        format!("`{written}` does not refer to the SDK: `mvm` is not imported in this file"),
        "add `import * as mvm from \"mvm-sdk\"` (or `import { app } from \"mvm-sdk\"`) at the top of the file",
    )
}

/// The name of a named function expression passed to the app, if any.
fn function_name(arg: Option<&Argument>) -> Option<String> {
    match arg?.as_expression().map(unwrap)? {
        Expression::FunctionExpression(f) => f.id.as_ref().map(|id| id.name.to_string()),
        _ => None,
    }
}

fn unknown_top_level(name: &str, pos: usize) -> Diag {
    let (prefix, seg) = match name.rsplit_once('.') {
        Some((p, s)) => (format!("{p}."), s),
        None => (String::new(), name),
    };
    let hint = match helpers::closest(&helpers::snake_case(seg), ["app", "workload"]) {
        Some(s) => format!("did you mean {prefix}{s}?"),
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
    names: &SdkNames,
    call: &oxc_ast::ast::CallExpression,
    path: &[String],
    depth: usize,
) -> Result<Call, Vec<Diag>> {
    let written = imports::written(path);
    // Only a name that resolves through the SDK's imports is a helper;
    // anything else keeps an empty helper so lowering reports it under its
    // written name.
    let helper = match names.resolve(path) {
        Some(r) => r.direct().map(helpers::snake_case).unwrap_or_default(),
        None if imports::unimported_mvm(names, path) => {
            return Err(vec![not_imported(&written, at(call))]);
        }
        None => String::new(),
    };
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
            match object(names, o, depth) {
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
        match convert(names, e, depth) {
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

fn convert(names: &SdkNames, e: &Expression, depth: usize) -> Result<Value, Vec<Diag>> {
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
                        |x| convert(names, x, depth + 1),
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
        Expression::ObjectExpression(o) => Kind::Dict(object(names, o, depth + 1)?),
        Expression::CallExpression(c) => match dotted(&c.callee) {
            Some(path) => Kind::Call(convert_call(names, c, &path, depth + 1)?),
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
            let name = dotted(e).map_or_else(|| "this member".into(), |p| imports::written(&p));
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

fn object(
    names: &SdkNames,
    o: &oxc_ast::ast::ObjectExpression,
    depth: usize,
) -> Result<Vec<Entry>, Vec<Diag>> {
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
        match convert(names, &p.value, depth) {
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
