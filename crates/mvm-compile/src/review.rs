//! `review.json`: seed 000's checklist for a workload about to become a
//! shared artifact, each item pass/warn/fail with the findings behind it
//! and, for declarations, where in the file it comes from.
//!
//! Summaries quote declaration text (paths, globs, hosts, requirement
//! lines); it is escaped ([`escape_control`], or `{:?}` for lists), so a
//! summary printed on a terminal cannot hold a newline or an ESC sequence.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use mvm_ir::text::escape_control;
use mvm_ir::{App, Dependencies, EnvValue, Finding, Location, NetworkMode, Workload};
use serde::Serialize;

use crate::locate;

/// Bumped when the shape of `review.json` changes incompatibly.
pub const REVIEW_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Review {
    pub review_version: u32,
    pub workload_id: String,
    pub app_name: String,
    pub ir_hash: String,
    pub origin: String,
    pub checks: Vec<ReviewCheck>,
    /// Every finding of the compile (errors stop it, so these are warnings
    /// in a written review); each check also lists its own.
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReviewCheck {
    pub check: CheckName,
    pub status: Status,
    /// One sentence saying what was found.
    pub summary: String,
    /// JSON pointer of the part of the IR the check looks at.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckName {
    /// Source include/exclude rules are narrow.
    SourceNarrow,
    /// The network starts closed, and grants are concrete.
    NetworkClosed,
    /// Dependency lockfiles are present and pinned; images are pinned.
    DependenciesPinned,
    /// Secrets are references, not values.
    SecretsAreReferences,
    /// Hooks do not fetch unpinned code.
    HooksPinned,
}

impl CheckName {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckName::SourceNarrow => "source_narrow",
            CheckName::NetworkClosed => "network_closed",
            CheckName::DependenciesPinned => "dependencies_pinned",
            CheckName::SecretsAreReferences => "secrets_are_references",
            CheckName::HooksPinned => "hooks_pinned",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// What the checks need beyond the IR.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub ir_hash: &'a str,
    pub origin: &'a str,
    /// Files and symlinks in the bundle, when it could be scanned.
    pub bundled: Option<usize>,
    /// Requirement lines of a pip-tools lockfile that are not pinned with `==`.
    pub unpinned_requirements: &'a [String],
    /// The attached addons as bundled (their files are in `bundled` too).
    pub addons: &'a [crate::bundle::addons::BundledAddon],
    pub spans: &'a BTreeMap<String, Location>,
}

/// Include globs that select the whole source directory.
const BROAD_INCLUDES: [&str; 3] = ["**", "**/*", "./**"];

pub fn review(workload: &Workload, app: &App, findings: &[Finding], facts: &Facts<'_>) -> Review {
    let mut checks = vec![
        with_addons(source_narrow(app, facts), facts),
        network_closed(app),
        dependencies_pinned(app, facts),
        secrets_are_references(app),
        hooks_pinned(app),
    ];
    for c in &mut checks {
        c.findings = findings
            .iter()
            .filter(|f| owner(&f.path) == Some(c.check))
            .cloned()
            .collect();
        c.location = locate::lookup(facts.spans, &c.path).cloned();
        let worst = c
            .findings
            .iter()
            .map(|f| {
                if f.is_error() {
                    Status::Fail
                } else {
                    Status::Warn
                }
            })
            .max();
        c.status = c.status.max(worst.unwrap_or(Status::Pass));
        if !c.findings.is_empty() {
            c.summary
                .push_str(&format!("; {} finding(s)", c.findings.len()));
        }
    }
    Review {
        review_version: REVIEW_VERSION,
        workload_id: workload.id.clone(),
        app_name: app.name.clone(),
        ir_hash: facts.ir_hash.to_string(),
        origin: facts.origin.to_string(),
        checks,
        findings: findings.to_vec(),
    }
}

/// Which check a finding belongs to, by the part of the IR it points at.
fn owner(pointer: &str) -> Option<CheckName> {
    let rest = pointer.strip_prefix("/apps/0/")?;
    let top = rest.split('/').next()?;
    match top {
        "source" => Some(CheckName::SourceNarrow),
        "network" => Some(CheckName::NetworkClosed),
        "dependencies" | "image" => Some(CheckName::DependenciesPinned),
        "env" => Some(CheckName::SecretsAreReferences),
        "hooks" => Some(CheckName::HooksPinned),
        "addons" if rest.split('/').nth(2) == Some("hooks") => Some(CheckName::HooksPinned),
        "addons" if rest.split('/').nth(2) == Some("source") => Some(CheckName::SourceNarrow),
        _ => None,
    }
}

fn check(check: CheckName, status: Status, path: &str, summary: String) -> ReviewCheck {
    ReviewCheck {
        check,
        status,
        summary,
        path: path.to_string(),
        location: None,
        findings: Vec::new(),
    }
}

fn source_narrow(app: &App, facts: &Facts<'_>) -> ReviewCheck {
    let path = "/apps/0/source";
    let mvm_ir::Source::LocalPath {
        path: dir,
        include,
        exclude,
    } = &app.source
    else {
        return check(
            CheckName::SourceNarrow,
            Status::Fail,
            path,
            "the source is not a local directory".into(),
        );
    };
    let dir = escape_control(dir);
    // `bundled` counts the addons' files too; `with_addons` names them.
    let addon_files: usize = facts.addons.iter().map(|a| a.files).sum();
    let files = match facts.bundled.map(|n| n.saturating_sub(addon_files)) {
        Some(n) => format!("{n} file(s)"),
        None => "the files".to_string(),
    };
    let excluding = if exclude.is_empty() {
        String::new()
    } else {
        format!(", excluding {exclude:?}")
    };
    if include.iter().any(|g| BROAD_INCLUDES.contains(&g.as_str())) {
        check(
            CheckName::SourceNarrow,
            Status::Warn,
            path,
            format!(
                "include {include:?} bundles everything under `{dir}`{excluding} ({files}); \
                 list only what the workload needs"
            ),
        )
    } else {
        check(
            CheckName::SourceNarrow,
            Status::Pass,
            path,
            format!("{files} under `{dir}` selected by include {include:?}{excluding}"),
        )
    }
}

/// The bundled addons, named in the source check's summary: their files
/// go into the image as the app's do.
fn with_addons(mut c: ReviewCheck, facts: &Facts<'_>) -> ReviewCheck {
    if !facts.addons.is_empty() {
        let each: Vec<String> = facts
            .addons
            .iter()
            .map(|a| format!("`{}` ({} file(s))", a.name, a.files))
            .collect();
        let _ = write!(
            c.summary,
            "; plus addon(s) {} at {}/<name>/",
            each.join(", "),
            crate::bundle::addons::GUEST_DIR
        );
    }
    c
}

fn network_closed(app: &App) -> ReviewCheck {
    let path = "/apps/0/network";
    let n = &app.network;
    let grants: Vec<String> = n
        .egress
        .allowlist
        .iter()
        .map(|g| format!("{}:{}", escape_control(&g.host), g.port))
        .collect();
    let grants = if grants.is_empty() {
        "no egress".to_string()
    } else {
        format!("egress to {}", grants.join(", "))
    };
    let ports = if n.ports.is_empty() {
        String::new()
    } else {
        format!(", {} forwarded port(s)", n.ports.len())
    };
    match n.mode {
        NetworkMode::None => check(
            CheckName::NetworkClosed,
            Status::Pass,
            path,
            "closed: no network device".into(),
        ),
        NetworkMode::Bridge => check(
            CheckName::NetworkClosed,
            Status::Pass,
            path,
            format!("bridge with {grants}{ports}"),
        ),
        NetworkMode::Host => check(
            CheckName::NetworkClosed,
            Status::Warn,
            path,
            format!("host networking: the guest shares the host's network ({grants}{ports})"),
        ),
    }
}

fn dependencies_pinned(app: &App, facts: &Facts<'_>) -> ReviewCheck {
    let path = "/apps/0/dependencies";
    let (lockfile, tool) = match &app.dependencies {
        Dependencies::None => {
            return check(
                CheckName::DependenciesPinned,
                Status::Pass,
                path,
                "no dependencies declared".into(),
            );
        }
        Dependencies::Python { lockfile, tool } => (lockfile, serde_json::to_value(tool)),
        Dependencies::Node { lockfile, tool } => (lockfile, serde_json::to_value(tool)),
    };
    let tool = tool
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    if facts.unpinned_requirements.is_empty() {
        check(
            CheckName::DependenciesPinned,
            Status::Pass,
            path,
            format!(
                "{tool} lockfile `{}` is in the bundle",
                escape_control(lockfile)
            ),
        )
    } else {
        check(
            CheckName::DependenciesPinned,
            Status::Warn,
            path,
            format!(
                "`{}` has requirement(s) not pinned with `==`: {}",
                escape_control(lockfile),
                facts
                    .unpinned_requirements
                    .iter()
                    .map(|r| escape_control(r))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    }
}

fn secrets_are_references(app: &App) -> ReviewCheck {
    let refs = app
        .env
        .values()
        .filter(|v| matches!(v, EnvValue::SecretRef { .. }))
        .count();
    let literals = app.env.len() - refs;
    check(
        CheckName::SecretsAreReferences,
        Status::Pass,
        "/apps/0/env",
        format!("{refs} secret reference(s) by name, {literals} literal value(s)"),
    )
}

fn hooks_pinned(app: &App) -> ReviewCheck {
    let count: usize = mvm_ir::HookPhase::ALL
        .iter()
        .map(|p| crate::hooks::merged(app, *p).len())
        .sum();
    check(
        CheckName::HooksPinned,
        Status::Pass,
        "/apps/0/hooks",
        format!("{count} hook command(s)"),
    )
}

impl Review {
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// A few lines for a terminal: the tally, then one line per check.
    pub fn render_text(&self) -> String {
        let mut s = format!(
            "review: {} pass, {} warn, {} fail\n",
            self.count(Status::Pass),
            self.count(Status::Warn),
            self.count(Status::Fail)
        );
        for c in &self.checks {
            let _ = writeln!(
                s,
                "  {:<4}  {:<22}  {}",
                c.status.as_str(),
                c.check.as_str(),
                c.summary
            );
        }
        s
    }
}
