//! The lowering's defaults, accepted values, aliases and lockfiles, as data.
//!
//! The lowering ([`crate::lower`]) applies these (an absent argument takes
//! the constant, a string argument is looked up in its [`Choices`], the "use
//! one of ..." hint lists them) and [`crate::sdk_spec`] renders the same
//! tables for the SDKs, so what the SDKs are told is what the compiler does.
//! Values are written as the argument a user would give (`"3.13"`, not the
//! `python313` package it lowers to), because that is what the SDKs take.

use mvm_ir::{Format, NetworkMode, NodeTool, Proto, PythonTool, SecretAuth, ThreatTier};

/// A literal in [`DEFAULTS`], in a form the spec can render.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lit {
    Bool(bool),
    Int(u64),
    Str(&'static str),
    Strs(&'static [&'static str]),
}

// --- defaults that are not a choice ----------------------------------------

/// `local_path(path=)`: the declaration's own directory.
pub const SOURCE_PATH: &str = ".";
/// `local_path(exclude=)`.
pub const SOURCE_EXCLUDE: &[&str] = &[];
/// `python_image(python=)`, and the runtime of a Python file without `image`.
pub const PYTHON_VERSION: &str = "3.13";
/// `node_image(node=)`, and the runtime of a TypeScript file without `image`.
pub const NODE_VERSION: &str = "22";
/// `port(host=)`: any free port.
pub const PORT_HOST: u16 = 0;
/// `dns_resolver(port=)`.
pub const DNS_PORT: u16 = 53;
/// `entrypoint_function(primary=)` and `entrypoint(primary=)`; a single
/// entrypoint is primary whatever it says.
pub const PRIMARY: bool = false;
/// `entrypoint(name=)`.
pub const COMMAND_NAME: &str = "main";

/// The port every `network(allow_https=[...])` host is allowed on.
pub const HTTPS_PORT: u16 = 443;
/// The `format` of every function entrypoint.
pub const FUNCTION_FORMAT: Format = Format::Json;
/// The lowest port the validator accepts (0 is "any" only on the host side);
/// the lowering's out-of-range hint states it.
pub const PORT_MIN: u16 = 1;

// --- choices ---------------------------------------------------------------

/// A string parameter that takes one of a fixed set of values.
pub struct Choices<T: 'static> {
    pub helper: &'static str,
    pub param: &'static str,
    /// Every accepted spelling, in the order errors list them, and what it
    /// lowers to.
    pub values: &'static [(&'static str, T)],
    /// Spellings that stand for another listed one: `(alias, value)`.
    pub aliases: &'static [(&'static str, &'static str)],
    /// The spelling an absent argument means.
    pub default: &'static str,
}

impl<T: Copy + PartialEq> Choices<T> {
    /// What `name` lowers to, if it is accepted.
    pub fn lookup(&self, name: &str) -> Option<T> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
    }

    /// What an absent argument lowers to.
    pub fn default_value(&self) -> T {
        self.lookup(self.default).unwrap_or_else(|| {
            panic!(
                "tables: default {:?} of {}({}=) is not one of its values",
                self.default, self.helper, self.param
            )
        })
    }

    /// The spelling of `value` that is not an alias.
    pub fn name_of(&self, value: T) -> &'static str {
        self.values
            .iter()
            .find(|(n, t)| *t == value && !self.aliases.iter().any(|(a, _)| a == n))
            .map(|(n, _)| *n)
            .unwrap_or_else(|| {
                panic!(
                    "tables: a value of {}({}=) has no spelling",
                    self.helper, self.param
                )
            })
    }

    /// The table without the lowered values, for the spec.
    pub fn names(&self) -> ChoiceNames {
        ChoiceNames {
            helper: self.helper,
            param: self.param,
            values: self.values.iter().map(|(n, _)| *n).collect(),
            aliases: self.aliases,
            default: self.default,
        }
    }
}

/// [`Choices`] without the type of what the values lower to.
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceNames {
    pub helper: &'static str,
    pub param: &'static str,
    pub values: Vec<&'static str>,
    pub aliases: &'static [(&'static str, &'static str)],
    pub default: &'static str,
}

pub const PYTHON_TOOL: Choices<PythonTool> = Choices {
    helper: "python_deps",
    param: "tool",
    values: &[
        ("uv", PythonTool::Uv),
        ("pip-tools", PythonTool::PipTools),
        ("pip_tools", PythonTool::PipTools),
    ],
    aliases: &[("pip-tools", "pip_tools")],
    default: "uv",
};

pub const NODE_TOOL: Choices<NodeTool> = Choices {
    helper: "node_deps",
    param: "tool",
    values: &[
        ("npm", NodeTool::Npm),
        ("pnpm", NodeTool::Pnpm),
        ("yarn", NodeTool::Yarn),
    ],
    aliases: &[],
    default: "npm",
};

/// A network mode as written: an IR mode, or the seeds' "deny" (closed,
/// except for `allow_https` hosts).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Ir(NetworkMode),
    Deny,
}

pub const NETWORK_MODE: Choices<Mode> = Choices {
    helper: "network",
    param: "mode",
    values: &[
        ("none", Mode::Ir(NetworkMode::None)),
        ("deny", Mode::Deny),
        ("bridge", Mode::Ir(NetworkMode::Bridge)),
        ("host", Mode::Ir(NetworkMode::Host)),
    ],
    aliases: &[],
    default: "none",
};

pub const PORT_PROTO: Choices<Proto> = Choices {
    helper: "port",
    param: "proto",
    values: &[("tcp", Proto::Tcp), ("udp", Proto::Udp)],
    aliases: &[],
    default: "tcp",
};

pub const THREAT_TIER: Choices<ThreatTier> = Choices {
    helper: "app",
    param: "threat_tier",
    values: &[
        ("untrusted", ThreatTier::Untrusted),
        ("trusted", ThreatTier::Trusted),
    ],
    aliases: &[],
    default: "untrusted",
};

/// How the host applies a secret to a request it makes for the guest.
pub const SECRET_TYPE: Choices<SecretAuth> = Choices {
    helper: "secret",
    param: "type",
    values: &[
        ("token", SecretAuth::Token),
        ("bearer", SecretAuth::Bearer),
        ("basic", SecretAuth::Basic),
        ("header", SecretAuth::Header),
    ],
    aliases: &[],
    default: "token",
};

/// Every [`Choices`] table, in the order the spec lists them.
pub fn choices() -> [ChoiceNames; 6] {
    [
        PYTHON_TOOL.names(),
        NODE_TOOL.names(),
        NETWORK_MODE.names(),
        PORT_PROTO.names(),
        THREAT_TIER.names(),
        SECRET_TYPE.names(),
    ]
}

/// `(helper, parameter, default)` for the constants above that are what an
/// absent argument means. The [`choices`] carry their own defaults, and the
/// resources, include glob and working directory are the IR crate's.
pub const DEFAULTS: &[(&str, &str, Lit)] = &[
    ("local_path", "path", Lit::Str(SOURCE_PATH)),
    ("local_path", "exclude", Lit::Strs(SOURCE_EXCLUDE)),
    ("python_image", "python", Lit::Str(PYTHON_VERSION)),
    ("node_image", "node", Lit::Str(NODE_VERSION)),
    ("port", "host", Lit::Int(PORT_HOST as u64)),
    ("dns_resolver", "port", Lit::Int(DNS_PORT as u64)),
    ("entrypoint_function", "primary", Lit::Bool(PRIMARY)),
    ("entrypoint", "primary", Lit::Bool(PRIMARY)),
    ("entrypoint", "name", Lit::Str(COMMAND_NAME)),
];

// --- aliases and lockfiles -------------------------------------------------

/// `(helper, alias, parameter it stands for)`; giving both is
/// E_KWARG_CONFLICT. The alias is in the helper's signature too, so binding
/// accepts it.
pub const PARAM_ALIASES: &[(&str, &str, &str)] = &[("resources", "cpu", "cpu_cores")];

/// The aliases of `helper`'s parameters: `(alias, parameter)`.
pub fn param_aliases(helper: &str) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
    PARAM_ALIASES
        .iter()
        .filter(move |(h, _, _)| *h == helper)
        .map(|&(_, a, p)| (a, p))
}

/// The lockfile `python_deps` uses for each tool when none is given.
pub const PYTHON_LOCKFILES: &[(PythonTool, &str)] = &[
    (PythonTool::Uv, "uv.lock"),
    (PythonTool::PipTools, "requirements.txt"),
];

/// The lockfile `node_deps` uses for each tool when none is given.
pub const NODE_LOCKFILES: &[(NodeTool, &str)] = &[
    (NodeTool::Npm, "package-lock.json"),
    (NodeTool::Pnpm, "pnpm-lock.yaml"),
    (NodeTool::Yarn, "yarn.lock"),
];

/// The lockfile `table` gives `tool`.
pub fn lockfile<T: PartialEq>(table: &[(T, &'static str)], tool: T) -> &'static str {
    table
        .iter()
        .find(|(t, _)| *t == tool)
        .map(|(_, l)| *l)
        .expect("tables: every tool has a lockfile (checked by a unit test)")
}

/// `(helper, tool as the IR spells it, lockfile)`, for the spec.
pub fn lockfiles() -> Vec<(&'static str, &'static str, &'static str)> {
    fn rows<T: Copy + PartialEq>(
        choices: &Choices<T>,
        table: &[(T, &'static str)],
    ) -> Vec<(&'static str, &'static str, &'static str)> {
        table
            .iter()
            .map(|&(t, l)| (choices.helper, choices.name_of(t), l))
            .collect()
    }
    let mut out = rows(&PYTHON_TOOL, PYTHON_LOCKFILES);
    out.extend(rows(&NODE_TOOL, NODE_LOCKFILES));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::signature;

    fn params(helper: &str) -> &'static [&'static str] {
        signature(helper)
            .unwrap_or_else(|| panic!("tables name {helper}, which is not a helper"))
            .params
    }

    #[test]
    fn every_entry_names_a_helper_parameter() {
        for (h, p, _) in DEFAULTS {
            assert!(params(h).contains(p), "default of {h}({p}=)");
        }
        for c in choices() {
            assert!(params(c.helper).contains(&c.param), "{c:?}");
        }
        for (h, p, _) in DEFAULTS {
            let twice = choices().iter().any(|c| c.helper == *h && c.param == *p);
            assert!(!twice, "{h}({p}=) has a default and a choice table");
        }
        for (h, a, p) in PARAM_ALIASES {
            assert!(
                params(h).contains(a) && params(h).contains(p),
                "{h}: {a} → {p}"
            );
        }
    }

    #[test]
    fn choice_tables_are_consistent() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(c: &Choices<T>) {
            c.default_value();
            for (alias, target) in c.aliases {
                assert!(!c.aliases.iter().any(|(a, _)| a == target), "{target}");
                assert_eq!(c.lookup(alias), c.lookup(target), "{alias} → {target}");
                assert!(c.lookup(target).is_some(), "{target} is not accepted");
            }
            // Every value has one own spelling.
            for (_, t) in c.values {
                c.name_of(*t);
            }
        }
        check(&PYTHON_TOOL);
        check(&NODE_TOOL);
        check(&NETWORK_MODE);
        check(&PORT_PROTO);
        check(&SECRET_TYPE);
        check(&THREAT_TIER);
        assert_eq!(SECRET_TYPE.default_value(), SecretAuth::default());
        assert_eq!(NETWORK_MODE.name_of(Mode::Ir(NetworkMode::Host)), "host");
        assert_eq!(PYTHON_TOOL.name_of(PythonTool::PipTools), "pip_tools");
    }

    #[test]
    fn every_tool_has_one_lockfile() {
        for (_, t) in PYTHON_TOOL.values {
            assert_eq!(PYTHON_LOCKFILES.iter().filter(|(x, _)| x == t).count(), 1);
        }
        for (_, t) in NODE_TOOL.values {
            assert_eq!(NODE_LOCKFILES.iter().filter(|(x, _)| x == t).count(), 1);
        }
        assert_eq!(
            lockfile(PYTHON_LOCKFILES, PythonTool::PipTools),
            "requirements.txt"
        );
    }
}
