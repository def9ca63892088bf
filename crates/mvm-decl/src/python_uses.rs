//! A depth-limited walk over a whole Python syntax tree: refuses trees
//! nested deeper than [`crate::nesting::MAX_TREE_DEPTH`] (before anything recursive walks
//! or drops them), and notes where the SDK's `app` and `Sandbox` are used
//! anywhere in the file, for the "no declaration" messages.

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{Expr, ModModule, Stmt};
use ruff_text_size::Ranged;

use crate::diag::Diag;
use crate::imports::{SdkNames, Uses};
use crate::nesting::Depth;

/// `Err` when the tree nests deeper than the limit.
pub fn check_depth(module: &ModModule) -> Result<(), Diag> {
    let empty = SdkNames::default();
    walk(module, &empty).map(|_| ())
}

pub fn uses(module: &ModModule, names: &SdkNames) -> Uses {
    walk(module, names).unwrap_or_default()
}

fn walk(module: &ModModule, names: &SdkNames) -> Result<Uses, Diag> {
    let mut w = Walker {
        names,
        depth: Depth::default(),
        uses: Uses::default(),
    };
    for stmt in &module.body {
        w.visit_stmt(stmt);
    }
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
            "app" => &mut self.uses.app,
            "Sandbox" => &mut self.uses.sandbox,
            _ => return,
        };
        slot.get_or_insert(at);
    }
}

impl<'a> Visitor<'a> for Walker<'_> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        if self.enter(stmt.start().to_usize()) {
            visitor::walk_stmt(self, stmt);
            self.depth.leave();
        }
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        let at = expr.start().to_usize();
        if !self.enter(at) {
            return;
        }
        match expr {
            Expr::Attribute(a) if matches!(&*a.value, Expr::Name(n) if self.names.is_module(n.id.as_str())) =>
            {
                self.export(a.attr.id.as_str(), at);
            }
            Expr::Name(n) if self.names.is_module(n.id.as_str()) => {
                // The module handed around (`x = mvm`) may reach `app`.
                self.uses.app.get_or_insert(at);
            }
            Expr::Name(n) => {
                if let Some(export) = self.names.member(n.id.as_str()) {
                    let export = export.to_string();
                    self.export(&export, at);
                }
            }
            _ => visitor::walk_expr(self, expr),
        }
        self.depth.leave();
    }
}
