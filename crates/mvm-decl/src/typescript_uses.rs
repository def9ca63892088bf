//! A depth-limited walk over a whole TypeScript program: refuses trees
//! nested deeper than [`crate::nesting::MAX_TREE_DEPTH`], and notes where the SDK's `app`
//! and `Sandbox` are used anywhere in the file. That decides whether a file
//! without a module-level declaration may be treated as a recording script:
//! any use that may reach `app` (the namespace handed around, destructured
//! or indexed with a computed key) counts as `app`, so such a file is never
//! run on the host.

use oxc_ast::ast::{
    ComputedMemberExpression, Expression, IdentifierReference, ImportDeclaration, Program,
    Statement, StaticMemberExpression, TSType,
};
use oxc_ast_visit::{Visit, walk};
use oxc_span::GetSpan;

use crate::diag::Diag;
use crate::imports::{SdkNames, Uses};
use crate::nesting::Depth;

pub fn uses(program: &Program, names: &SdkNames) -> Result<Uses, Diag> {
    let mut w = Walker {
        names,
        depth: Depth::default(),
        uses: Uses::default(),
    };
    w.visit_program(program);
    w.depth.finish(w.uses)
}

struct Walker<'n> {
    names: &'n SdkNames,
    depth: Depth,
    uses: Uses,
}

impl Walker<'_> {
    fn enter(&mut self, at: usize) -> bool {
        self.depth.enter(at)
    }

    fn export(&mut self, export: &str, at: usize) {
        let slot = match export {
            "Sandbox" => &mut self.uses.sandbox,
            // `default` is the namespace again (a default import of the SDK).
            e if e == "default" || crate::helpers::snake_case(e) == "app" => &mut self.uses.app,
            _ => return,
        };
        slot.get_or_insert(at);
    }

    /// `ns.x` / `ns["x"]` where `ns` is the SDK module.
    fn sdk_object(&self, object: &Expression) -> bool {
        matches!(crate::typescript::unwrap(object), Expression::Identifier(i) if self.names.is_module(&i.name))
    }
}

impl<'a> Visit<'a> for Walker<'_> {
    fn visit_statement(&mut self, it: &Statement<'a>) {
        if self.enter(it.span().start as usize) {
            walk::walk_statement(self, it);
            self.depth.leave();
        }
    }

    fn visit_expression(&mut self, it: &Expression<'a>) {
        if self.enter(it.span().start as usize) {
            walk::walk_expression(self, it);
            self.depth.leave();
        }
    }

    // Types are erased before anything runs; `mvm.SandboxOptions` there is not a use.
    fn visit_ts_type(&mut self, _: &TSType<'a>) {}

    // The import's own bindings are not uses.
    fn visit_import_declaration(&mut self, _: &ImportDeclaration<'a>) {}

    fn visit_static_member_expression(&mut self, it: &StaticMemberExpression<'a>) {
        if self.sdk_object(&it.object) {
            self.export(&it.property.name, it.span.start as usize);
            return;
        }
        walk::walk_static_member_expression(self, it);
    }

    fn visit_computed_member_expression(&mut self, it: &ComputedMemberExpression<'a>) {
        if self.sdk_object(&it.object) {
            let at = it.span.start as usize;
            match crate::typescript::unwrap(&it.expression) {
                Expression::StringLiteral(s) => self.export(&s.value, at),
                // `ns[key]` may be anything, `app` included.
                _ => self.export("app", at),
            }
            self.visit_expression(&it.expression);
            return;
        }
        walk::walk_computed_member_expression(self, it);
    }

    fn visit_identifier_reference(&mut self, it: &IdentifierReference<'a>) {
        let at = it.span.start as usize;
        if self.names.is_module(&it.name) {
            // The namespace handed around (`const { app } = mvm`, `f(mvm)`).
            self.export("app", at);
        } else if let Some(export) = self.names.member(&it.name) {
            let export = export.to_string();
            self.export(&export, at);
        }
    }
}
