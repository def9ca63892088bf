//! What the image means for the workload, asked of the package table
//! (`mvm-packages`) that `mvmctl build` resolves with, so nothing compile
//! accepts fails for the first time after a build:
//!
//! - `W_IMAGE_UNBUILDABLE`: every problem the build's resolver finds (a
//!   name not in the table, a version nothing provides, two Debian
//!   releases, two Nodes, an oci_base image, an unsupported dependency
//!   tool), with the exact text `build` refuses with. A warning: the IR is
//!   valid and another mvm (one with a Nix cache) may build it.
//! - `E_IMAGE_NO_RUNTIME`: a function, command entrypoint or argv hook that
//!   runs on Python or Node in a nix_packages image with no package of
//!   that language (by name: `python312` counts although it cannot be
//!   built, which the warning says). An error: no image built from this
//!   declaration, here or anywhere, could run it. oci_base images are
//!   skipped (their contents are unknown), and so are shell hooks (what a
//!   shell line runs is not known without running it).

use mvm_ir::text::escape_control;
use mvm_ir::{App, Code, Dependencies, Entrypoint, Finding, HookCmd, HookPhase, Image, Language};
use mvm_ir::{NodeTool, PythonTool};
use mvm_packages::{DepsTool, ResolveError, Resolver, Runtime, Subject};

use crate::hooks;

const IMAGE_POINTER: &str = "/apps/0/image";

/// Both checks. `origin` is the request's (`typescript:PATH`, ...): hints
/// use the declaring front end's spelling. `earlier` are the findings so
/// far; an image validation already refused is not resolved again.
pub fn findings(app: &App, origin: &str, earlier: &[Finding]) -> Vec<Finding> {
    let mut out = Vec::new();
    if !earlier
        .iter()
        .any(|f| f.is_error() && f.path.starts_with(IMAGE_POINTER))
    {
        out.extend(unbuildable(app));
    }
    out.extend(no_runtime(app, Spelling::of(origin)));
    out
}

/// The dependency tool as `mvmctl build` maps it (mvm-image's `deps_tool`,
/// from launch.json's copy of the same declaration).
fn deps_tool(deps: &Dependencies) -> DepsTool {
    match deps {
        Dependencies::None => DepsTool::None,
        Dependencies::Python { tool, .. } => match tool {
            PythonTool::Uv => DepsTool::Uv,
            PythonTool::PipTools => DepsTool::PipTools,
        },
        Dependencies::Node { tool, .. } => match tool {
            NodeTool::Npm => DepsTool::Npm,
            NodeTool::Pnpm => DepsTool::Pnpm,
            NodeTool::Yarn => DepsTool::Yarn,
        },
    }
}

/// `W_IMAGE_UNBUILDABLE`, one per problem, in the order build meets them.
fn unbuildable(app: &App) -> Vec<Finding> {
    let problems: Vec<(String, ResolveError)> = match &app.image {
        // build refuses these before it looks at anything else.
        Image::OciBase { reference, .. } => vec![(
            IMAGE_POINTER.to_string(),
            ResolveError::OciUnsupported {
                reference: escape_control(reference).into_owned(),
            },
        )],
        Image::NixPackages { packages } => {
            match Resolver::Debian.resolve_all(packages, deps_tool(&app.dependencies)) {
                Ok(_) => Vec::new(),
                Err(problems) => problems
                    .into_iter()
                    .map(|p| {
                        let at = match p.subject {
                            Subject::Package(i) => format!("{IMAGE_POINTER}/packages/{i}"),
                            Subject::DepsTool => "/apps/0/dependencies/tool".to_string(),
                        };
                        (at, p.error)
                    })
                    .collect(),
            }
        }
    };
    problems
        .into_iter()
        .map(|(at, e)| Finding::new(Code::WImageUnbuildable, at, e.to_string(), e.hint()))
        .collect()
}

/// How hints spell a declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spelling {
    Python,
    TypeScript,
    /// IR written by hand (or a recording): package names.
    Ir,
}

impl Spelling {
    fn of(origin: &str) -> Spelling {
        match origin.split_once(':').map(|(kind, _)| kind) {
            Some("python") => Spelling::Python,
            Some("typescript") => Spelling::TypeScript,
            _ => Spelling::Ir,
        }
    }
}

/// What to declare so the image has `runtime`, next to `packages`.
fn runtime_hint(runtime: Runtime, packages: &[String], spelling: Spelling) -> String {
    let s = runtime.suggestion(packages);
    let (helper, param) = match runtime {
        Runtime::Python => ("python_image", "python"),
        Runtime::Node => ("node_image", "node"),
    };
    let (package, version) = (s.package, s.version);
    match spelling {
        Spelling::Python => format!(
            "declare the image with mvm.{helper}({param}=\"{version}\"), \
             or add \"{package}\" to its mvm.nix_packages([...]) list"
        ),
        Spelling::TypeScript => format!(
            "declare the image with mvm.{helper}({{ {param}: \"{version}\" }}), \
             or add \"{package}\" to its mvm.nix_packages([...]) list"
        ),
        Spelling::Ir => format!(
            "add \"{package}\" to the image's packages (what mvm.{helper}({param}=\"{version}\") declares)"
        ),
    }
}

/// `E_IMAGE_NO_RUNTIME`, one per entrypoint or hook that cannot run.
fn no_runtime(app: &App, spelling: Spelling) -> Vec<Finding> {
    let Image::NixPackages { packages } = &app.image else {
        return Vec::new();
    };
    let has = |r: Runtime| packages.iter().any(|p| Runtime::of_package(p) == Some(r));
    let listed = if packages.is_empty() {
        "none".to_string()
    } else {
        let names: Vec<_> = packages.iter().map(|p| escape_control(p)).collect();
        names.join(", ")
    };
    let mut out = Vec::new();
    let mut missing = |pointer: String, what: String, runtime: Runtime| {
        if !has(runtime) {
            out.push(Finding::new(
                Code::EImageNoRuntime,
                pointer,
                format!(
                    "{what}, but the image has no {} (nix_packages: {listed}), \
                     so the instance could never run it",
                    runtime.as_str()
                ),
                runtime_hint(runtime, packages, spelling),
            ));
        }
    };
    for (i, e) in app.entrypoints.iter().enumerate() {
        let name = escape_control(e.name());
        match e {
            Entrypoint::Function { language, .. } => {
                let runtime = match language {
                    Language::Python => Runtime::Python,
                    Language::Node => Runtime::Node,
                };
                let kind = match (language, spelling) {
                    (Language::Node, Spelling::TypeScript) => "TypeScript function",
                    (Language::Node, _) => "Node function",
                    (Language::Python, _) => "Python function",
                };
                missing(
                    format!("/apps/0/entrypoints/{i}/language"),
                    format!(
                        "entrypoint `{name}` is a {kind} and runs on {}",
                        runtime.as_str()
                    ),
                    runtime,
                );
            }
            Entrypoint::Command { command, .. } => {
                if let Some(runtime) = command.first().and_then(|p| Runtime::of_program(p)) {
                    missing(
                        format!("/apps/0/entrypoints/{i}/command/0"),
                        format!(
                            "command entrypoint `{name}` runs `{}`",
                            escape_control(&command[0])
                        ),
                        runtime,
                    );
                }
            }
        }
    }
    for phase in HookPhase::ALL {
        for h in hooks::merged(app, phase) {
            let HookCmd::Argv { argv } = h.cmd else {
                continue;
            };
            if let Some(runtime) = argv.first().and_then(|p| Runtime::of_program(p)) {
                let whose = match h.origin {
                    hooks::Origin::Addon(a) => format!(" of addon `{}`", escape_control(a)),
                    hooks::Origin::App(_) => String::new(),
                };
                missing(
                    format!("{}/argv/0", h.pointer),
                    format!(
                        "a {} hook{whose} runs `{}`",
                        phase.as_str(),
                        escape_control(&argv[0])
                    ),
                    runtime,
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
