//! What the Python and TypeScript SDKs must agree on with the static
//! compiler, as one table they are generated from.
//!
//! The SDKs lower the same declaration helpers at run time that this crate
//! lowers statically, so they need the compiler's helper signatures, finding
//! code order, IR ranges and defaults, accepted values and name patterns.
//! Instead of copying them by hand, [`files`] renders them as
//! `sdk/spec.json`, `sdk/python/src/mvm/_spec.py`, `sdk/typescript/src/spec.ts`
//! and `sdk/typescript/src/aliases.ts` (the camelCase exports); the test
//! `tests/sdk_spec.rs` fails when a checked-in file differs
//! (`MVM_BLESS=1 cargo test -p mvm-decl --test sdk_spec` rewrites them).
//!
//! Taken directly from the code: helper signatures and phases
//! ([`crate::helpers`]); the defaults, accepted values, aliases and lockfiles
//! the lowering applies, and the lowest port its hints state
//! ([`crate::tables`]); codes ([`Code::ALL`]); ranges and resource defaults
//! ([`Resources`]); the schema version, the include glob and the working
//! directory, and the headers a secret may not set. The validator (in
//! `mvm-ir`) writes its name grammars, units and credential suffixes as code, and this crate cannot name serde's spelling
//! of the function format, so those are stated in the tables below. The test
//! proves them against the validator, and every default, choice, alias and
//! lockfile against the compiled output.

use mvm_ir::{Code, Resources};

use crate::helpers::{PHASES, SIGNATURES};
use crate::lower::camel_case;
use crate::tables::{self, Lit};

/// A value in the spec. Lists render as tuples in Python.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(u64),
    Str(String),
    /// Matched against the whole string: a string in JSON and Python
    /// (`re.fullmatch`, ASCII), an anchored regex literal in TypeScript.
    Regex(String),
    List(Vec<Value>),
    Map(Vec<(String, Value)>),
}

/// The unit each resource is reported in (`memory_mb 0 MiB is outside ...`).
pub const RESOURCE_UNITS: [(&str, &str); 3] = [
    ("cpu_cores", ""),
    ("memory_mb", " MiB"),
    ("rootfs_size_mb", " MiB"),
];

/// How the IR spells [`tables::FUNCTION_FORMAT`].
pub const FUNCTION_FORMAT: &str = "json";

/// An env key ending in one of these holding a literal is W_SECRET_LITERAL.
pub const CREDENTIAL_SUFFIXES: &[&str] = &["KEY", "TOKEN", "SECRET", "PASSWORD"];

/// A name grammar of the validator: `prefix`, then one character of `first`,
/// then characters of `rest`, `min..=max` characters after the prefix in all.
/// Classes are regex class bodies (`a-z0-9._-`). This shape covers every
/// grammar in `mvm_ir::validate`'s `names` module; [`Pattern::regex`] renders it.
#[derive(Debug, Clone, Copy)]
pub struct Pattern {
    pub name: &'static str,
    /// What the grammar is for, in the generated comment.
    pub what: &'static str,
    pub prefix: &'static str,
    pub first: &'static str,
    pub rest: &'static str,
    pub min: usize,
    pub max: Option<usize>,
}

const fn pattern(
    name: &'static str,
    what: &'static str,
    first: &'static str,
    rest: &'static str,
    max: Option<usize>,
) -> Pattern {
    Pattern {
        name,
        what,
        prefix: "",
        first,
        rest,
        min: 1,
        max,
    }
}

pub const PATTERNS: &[Pattern] = &[
    pattern(
        "id",
        "The workload id and app, entrypoint, addon and volume names (E_ID_INVALID).",
        "a-z",
        "a-z0-9-",
        Some(63),
    ),
    pattern(
        "env_name",
        "Env keys (E_ENV_NAME_INVALID).",
        "A-Za-z_",
        "A-Za-z0-9_",
        None,
    ),
    pattern(
        "secret_name",
        "Secret names (E_SECRET_NAME_INVALID).",
        "a-z0-9",
        "a-z0-9._-",
        Some(128),
    ),
    pattern(
        "identifier",
        "A Python function name, or one part of a dotted module path.",
        "A-Za-z_",
        "A-Za-z0-9_",
        None,
    ),
    pattern(
        "js_identifier",
        "The same for a Node entrypoint, where `$` is allowed.",
        "A-Za-z_$",
        "A-Za-z0-9_$",
        None,
    ),
    pattern(
        "nix_package",
        "A nixpkgs attribute name in nix_packages.",
        "A-Za-z_",
        "A-Za-z0-9_.+-",
        None,
    ),
    pattern(
        "header_name",
        "An HTTP header name (RFC 9110 tchar), for a secret of type \"header\" (E_SECRET_HEADER_INVALID; HOST_OWNED_HEADERS are refused too).",
        "A-Za-z0-9!#$%&'*+.^_`|~-",
        "A-Za-z0-9!#$%&'*+.^_`|~-",
        None,
    ),
    Pattern {
        name: "sha256_digest",
        what: "An oci_base digest.",
        prefix: "sha256:",
        first: "0-9a-f",
        rest: "0-9a-f",
        min: 64,
        max: Some(64),
    },
];

impl Pattern {
    /// The pattern as a regex without anchors, valid in Python and JavaScript.
    pub fn regex(&self) -> String {
        assert!(
            self.prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ':'),
            "pattern {}: the prefix would need regex escaping",
            self.name
        );
        assert!(
            self.min >= 1,
            "pattern {}: min must be at least 1",
            self.name
        );
        let body = if self.first == self.rest {
            format!("[{}]{}", self.first, quantifier(self.min, self.max))
        } else {
            let max = self.max.map(|m| m - 1);
            format!(
                "[{}][{}]{}",
                self.first,
                self.rest,
                quantifier(self.min - 1, max)
            )
        };
        format!("{}{body}", self.prefix)
    }

    /// Whether `c` may come first (after the prefix).
    pub fn first_allows(&self, c: char) -> bool {
        in_class(self.first, c)
    }

    /// Whether `c` may come after the first character.
    pub fn rest_allows(&self, c: char) -> bool {
        in_class(self.rest, c)
    }

    /// Whether `s` matches (the reference the test compares the validator with).
    pub fn matches(&self, s: &str) -> bool {
        let Some(tail) = s.strip_prefix(self.prefix) else {
            return false;
        };
        let chars: Vec<char> = tail.chars().collect();
        let len_ok = chars.len() >= self.min && self.max.is_none_or(|m| chars.len() <= m);
        len_ok
            && chars.split_first().is_some_and(|(&c, rest)| {
                in_class(self.first, c) && rest.iter().all(|&r| in_class(self.rest, r))
            })
    }
}

fn quantifier(min: usize, max: Option<usize>) -> String {
    match (min, max) {
        (0, None) => "*".into(),
        (1, None) => "+".into(),
        (n, None) => format!("{{{n},}}"),
        (1, Some(1)) => String::new(),
        (n, Some(m)) if n == m => format!("{{{n}}}"),
        (n, Some(m)) => format!("{{{n},{m}}}"),
    }
}

/// Membership in a regex class body: `a-z` ranges and literal characters
/// (a `-` first or last is literal).
fn in_class(class: &str, c: char) -> bool {
    let cs: Vec<char> = class.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        if i + 2 < cs.len() && cs[i + 1] == '-' {
            if (cs[i]..=cs[i + 2]).contains(&c) {
                return true;
            }
            i += 3;
        } else {
            if cs[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

fn lit(l: Lit) -> Value {
    match l {
        Lit::Bool(b) => Value::Bool(b),
        Lit::Int(i) => Value::Int(i),
        Lit::Str(s) => Value::Str(s.into()),
        Lit::Strs(l) => strs(l),
    }
}

/// Every default: [`tables::DEFAULTS`], the default of each of
/// [`tables::choices`], and those the IR crate defines.
pub fn defaults() -> Vec<(&'static str, &'static str, Value)> {
    let r = Resources::default();
    let mut out = vec![(
        "local_path",
        "include",
        Value::List(
            mvm_ir::default_include()
                .into_iter()
                .map(Value::Str)
                .collect(),
        ),
    )];
    out.extend(tables::DEFAULTS.iter().map(|&(h, p, v)| (h, p, lit(v))));
    out.extend(
        tables::choices()
            .into_iter()
            .map(|c| (c.helper, c.param, Value::Str(c.default.into()))),
    );
    out.extend([
        ("resources", "cpu_cores", Value::Int(r.cpu_cores)),
        ("resources", "memory_mb", Value::Int(r.memory_mb)),
        ("resources", "rootfs_size_mb", Value::Int(r.rootfs_size_mb)),
    ]);
    // In the helper table's order, each helper's parameters in theirs.
    let rank = |helper: &str, param: &str| {
        let h = SIGNATURES.iter().position(|s| s.name == helper);
        let p = h.and_then(|h| SIGNATURES[h].params.iter().position(|p| *p == param));
        match (h, p) {
            (Some(h), Some(p)) => (h, p),
            _ => panic!("sdk_spec default for {helper}({param}=): no such helper parameter"),
        }
    };
    out.sort_by_key(|(h, p, _)| rank(h, p));
    out
}

/// One named constant of the spec.
pub struct Entry {
    pub name: String,
    pub doc: String,
    pub value: Value,
    /// Rendered into `_spec.py` too (the camelCase aliases are TypeScript's).
    pub python: bool,
}

fn entry(name: impl Into<String>, doc: impl Into<String>, value: Value) -> Entry {
    Entry {
        name: name.into(),
        doc: doc.into(),
        value,
        python: true,
    }
}

fn strs(items: &[&str]) -> Value {
    Value::List(items.iter().map(|s| Value::Str((*s).into())).collect())
}

fn map<T>(items: impl IntoIterator<Item = (T, Value)>) -> Value
where
    T: Into<String>,
{
    Value::Map(items.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

fn upper(parts: &[&str]) -> String {
    parts.join("_").to_ascii_uppercase()
}

/// Every constant, in the order the files list them.
pub fn entries() -> Vec<Entry> {
    let mut out = vec![
        entry(
            "SCHEMA_VERSION",
            "The Workload IR schema version the SDKs write.",
            Value::Str(mvm_ir::SCHEMA_VERSION.into()),
        ),
        entry(
            "HELPER_PARAMS",
            "Every declaration helper, in the compiler's order (which breaks \"did you mean\" ties), with its parameters in positional order.",
            map(SIGNATURES.iter().map(|s| (s.name, strs(s.params)))),
        ),
        entry(
            "HELPER_POSITIONAL",
            "How many leading parameters of each helper may be given by position.",
            map(SIGNATURES
                .iter()
                .map(|s| (s.name, Value::Int(s.positional as u64)))),
        ),
        entry(
            "HELPER_REQUIRED",
            "The parameters each helper cannot do without.",
            map(SIGNATURES.iter().map(|s| (s.name, strs(s.required)))),
        ),
        entry(
            "PARAM_ALIASES",
            "Parameters that are another name of a parameter; giving both is E_KWARG_CONFLICT.",
            map(group(
                tables::PARAM_ALIASES
                    .iter()
                    .map(|&(h, a, p)| (h, (a, Value::Str(p.into())))),
            )
            .into_iter()
            .map(|(h, aliases)| (h, map(aliases)))),
        ),
        entry(
            "PHASES",
            "The hook phases, in lifecycle order.",
            strs(&PHASES),
        ),
        entry(
            "CODES",
            "Finding codes in registry order: findings sort by (JSON pointer, this order).",
            Value::List(
                Code::ALL
                    .iter()
                    .map(|c| Value::Str(c.as_str().into()))
                    .collect(),
            ),
        ),
        entry(
            "RANGES",
            "(resource, min, max, unit) checked as E_RESOURCES_RANGE.",
            Value::List(
                [
                    Resources::CPU_CORES,
                    Resources::MEMORY_MB,
                    Resources::ROOTFS_SIZE_MB,
                ]
                .into_iter()
                .zip(RESOURCE_UNITS)
                .map(|(range, (field, unit))| {
                    Value::List(vec![
                        Value::Str(field.into()),
                        Value::Int(*range.start()),
                        Value::Int(*range.end()),
                        Value::Str(unit.into()),
                    ])
                })
                .collect(),
            ),
        ),
        entry(
            "PORT_MIN",
            "The lowest port accepted (a host-side 0 means \"any free port\").",
            Value::Int(u64::from(tables::PORT_MIN)),
        ),
        entry(
            "PORT_MAX",
            "The highest port.",
            Value::Int(u64::from(u16::MAX)),
        ),
    ];
    for (helper, param, value) in defaults() {
        out.push(entry(
            format!("DEFAULT_{}", upper(&[helper, param])),
            format!("mvm.{helper}({param}=) when it is not given."),
            value,
        ));
    }
    let choices = tables::choices();
    for c in &choices {
        let (helper, param) = (c.helper, c.param);
        out.push(entry(
            format!("CHOICES_{}", upper(&[helper, param])),
            format!("The values mvm.{helper}({param}=) accepts, in the order errors list them."),
            strs(&c.values),
        ));
    }
    for (helper, param, aliases) in group_pairs(choices.iter().flat_map(|c| {
        c.aliases
            .iter()
            .map(|&(a, v)| ((c.helper, c.param), (a, Value::Str(v.into()))))
    })) {
        out.push(entry(
            format!("ALIASES_{}", upper(&[helper, param])),
            format!("Values of mvm.{helper}({param}=) that stand for another (alias → value)."),
            map(aliases),
        ));
    }
    for (helper, tools) in group(
        tables::lockfiles()
            .into_iter()
            .map(|(h, t, l)| (h, (t, Value::Str(l.into())))),
    ) {
        out.push(entry(
            format!("LOCKFILES_{}", upper(&[helper])),
            format!("The lockfile mvm.{helper} uses for each tool when none is given."),
            map(tools),
        ));
    }
    out.push(entry(
        "WORKING_DIR",
        "The working directory of every entrypoint (where the source bundle is in the guest).",
        Value::Str(mvm_ir::DEFAULT_WORKING_DIR.into()),
    ));
    out.push(entry(
        "FUNCTION_FORMAT",
        "The format of every function entrypoint.",
        Value::Str(FUNCTION_FORMAT.into()),
    ));
    for p in PATTERNS {
        out.push(entry(
            format!("PATTERN_{}", p.name.to_ascii_uppercase()),
            format!("{} Matched against the whole string.", p.what),
            Value::Regex(p.regex()),
        ));
    }
    out.push(entry(
        "CREDENTIAL_SUFFIXES",
        "An env key ending in one of these (any case) that holds a literal is W_SECRET_LITERAL.",
        strs(CREDENTIAL_SUFFIXES),
    ));
    out.push(entry(
        "HOST_OWNED_HEADERS",
        "Headers a secret of type \"header\" cannot set, compared case-insensitively: the host owns them on every request it makes (E_SECRET_HEADER_INVALID).",
        strs(mvm_ir::validate::secrets::HOST_OWNED_HEADERS),
    ));
    out.push(Entry {
        python: false,
        ..entry(
            "CAMEL_ALIASES",
            "TypeScript's camelCase name of every helper whose name has an underscore.",
            map(camel_aliases()
                .into_iter()
                .map(|(camel, snake)| (camel, Value::Str(snake.into())))),
        )
    });
    out
}

/// `(camelCase alias, helper)` for every helper whose name has an underscore.
pub fn camel_aliases() -> Vec<(String, &'static str)> {
    SIGNATURES
        .iter()
        .filter(|s| s.name.contains('_'))
        .map(|s| (camel_case(s.name), s.name))
        .collect()
}

/// Groups `(key, item)` pairs by key, keeping first-seen order.
fn group<K: PartialEq + Copy, I>(items: impl IntoIterator<Item = (K, I)>) -> Vec<(K, Vec<I>)> {
    let mut out: Vec<(K, Vec<I>)> = Vec::new();
    for (k, item) in items {
        match out.iter_mut().find(|(g, _)| *g == k) {
            Some((_, list)) => list.push(item),
            None => out.push((k, vec![item])),
        }
    }
    out
}

fn group_pairs<'a, I>(
    items: impl IntoIterator<Item = ((&'a str, &'a str), I)>,
) -> Vec<(&'a str, &'a str, Vec<I>)> {
    group(items)
        .into_iter()
        .map(|((h, p), list)| (h, p, list))
        .collect()
}

// --- rendering ----------------------------------------------------------------

const BLESS: &str = "MVM_BLESS=1 cargo test -p mvm-decl --test sdk_spec";

/// Every generated file: (path relative to the workspace root, contents).
pub fn files() -> Vec<(&'static str, String)> {
    let entries = entries();
    vec![
        ("sdk/spec.json", json(&entries)),
        ("sdk/python/src/mvm/_spec.py", python(&entries)),
        ("sdk/typescript/src/spec.ts", typescript(&entries)),
        ("sdk/typescript/src/aliases.ts", typescript_aliases()),
    ]
}

#[derive(Clone, Copy, PartialEq)]
enum Syntax {
    Json,
    Python,
    TypeScript,
}

/// Line width the values are laid out in.
const WIDTH: usize = 100;
/// Width generated comments are wrapped to.
const COMMENT_WIDTH: usize = 80;

const HEADER: &str = "Generated by crates/mvm-decl/src/sdk_spec.rs from the static compiler's own \
    tables; do not edit. These are what the SDKs must agree on with `mvmctl compile`: helper \
    signatures, finding code order, IR ranges and defaults, accepted values and name patterns. \
    sdk/spec.json, sdk/python/src/mvm/_spec.py and sdk/typescript/src/spec.ts hold the same \
    values; crates/mvm-decl/tests/sdk_spec.rs fails when one is stale or when a table no longer \
    matches what the compiler does.";

fn regenerate() -> String {
    format!(
        "Regenerate with `{BLESS}`, then run `npm run build` in sdk/typescript (dist/ is committed)."
    )
}

/// `text` in lines of at most [`COMMENT_WIDTH`] characters (a longer word stays whole).
fn wrap(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > COMMENT_WIDTH {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

fn comment(text: &str, lead: &str) -> String {
    wrap(text)
        .iter()
        .map(|l| format!("{lead}{l}").trim_end().to_string() + "\n")
        .collect()
}

fn json(entries: &[Entry]) -> String {
    let mut items = vec![(
        "about".to_string(),
        Value::Str(format!("{HEADER} {}", regenerate())),
    )];
    items.extend(entries.iter().map(|e| (e.name.clone(), e.value.clone())));
    let mut out = String::new();
    layout(&Value::Map(items), Syntax::Json, 0, 0, &mut out);
    out.push('\n');
    out
}

fn python(entries: &[Entry]) -> String {
    let mut out = comment(HEADER, "# ");
    out.push_str(&comment(&regenerate(), "# "));
    out.push_str(
        "\"\"\"The compiler's tables the SDK lowers with (see the comment above).\"\"\"\n",
    );
    for e in entries.iter().filter(|e| e.python) {
        out.push('\n');
        out.push_str(&comment(&e.doc, "# "));
        out.push_str(&format!("{} = ", e.name));
        layout(&e.value, Syntax::Python, 0, e.name.len() + 3, &mut out);
        out.push('\n');
    }
    out
}

fn typescript(entries: &[Entry]) -> String {
    let mut out = String::from("/**\n");
    out.push_str(&comment(HEADER, " * "));
    out.push_str(&comment(&regenerate(), " * "));
    out.push_str(" */\n");
    for e in entries {
        match wrap(&e.doc).as_slice() {
            [one] if one.len() + 7 <= COMMENT_WIDTH => out.push_str(&format!("\n/** {one} */\n")),
            _ => {
                out.push_str("\n/**\n");
                out.push_str(&comment(&e.doc, " * "));
                out.push_str(" */\n");
            }
        }
        out.push_str(&format!("export const {} = ", e.name));
        layout(&e.value, Syntax::TypeScript, 0, e.name.len() + 16, &mut out);
        if matches!(e.value, Value::List(_) | Value::Map(_)) {
            out.push_str(" as const");
        }
        out.push_str(";\n");
    }
    out
}

/// `aliases.ts`: the camelCase exports (ES exports cannot be made from data).
fn typescript_aliases() -> String {
    let mut out = String::from("/**\n");
    out.push_str(&comment(
        "The camelCase alias of every helper with an underscore in its name (CAMEL_ALIASES \
         in spec.ts); both spellings are the same function. Generated by \
         crates/mvm-decl/src/sdk_spec.rs; do not edit.",
        " * ",
    ));
    out.push_str(&comment(&regenerate(), " * "));
    out.push_str(" */\n\nimport * as h from \"./helpers.js\";\n\n");
    for (camel, snake) in camel_aliases() {
        out.push_str(&format!("export const {camel} = h.{snake};\n"));
    }
    out
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A map key: bare in TypeScript when it is an identifier.
fn key(k: &str, syn: Syntax) -> String {
    let ident = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if syn == Syntax::TypeScript && ident {
        k.to_string()
    } else {
        quote(k)
    }
}

fn scalar(v: &Value, syn: Syntax) -> Option<String> {
    Some(match v {
        Value::Bool(b) => match (syn, b) {
            (Syntax::Python, true) => "True".into(),
            (Syntax::Python, false) => "False".into(),
            (_, b) => b.to_string(),
        },
        Value::Int(i) => i.to_string(),
        Value::Str(s) => quote(s),
        Value::Regex(r) if syn == Syntax::TypeScript => {
            assert!(
                !r.contains('/') && !r.contains('\n'),
                "pattern {r:?} cannot be a regex literal"
            );
            format!("/^{r}$/")
        }
        Value::Regex(r) => quote(r),
        Value::List(_) | Value::Map(_) => return None,
    })
}

fn brackets(v: &Value, syn: Syntax) -> (&'static str, &'static str) {
    match (v, syn) {
        (Value::List(_), Syntax::Python) => ("(", ")"),
        (Value::List(_), _) => ("[", "]"),
        _ => ("{", "}"),
    }
}

fn inline(v: &Value, syn: Syntax) -> String {
    if let Some(s) = scalar(v, syn) {
        return s;
    }
    let (open, close) = brackets(v, syn);
    let items: Vec<String> = match v {
        Value::List(l) => l.iter().map(|x| inline(x, syn)).collect(),
        Value::Map(m) => m
            .iter()
            .map(|(k, x)| format!("{}: {}", key(k, syn), inline(x, syn)))
            .collect(),
        _ => unreachable!("scalars returned above"),
    };
    let joined = items.join(", ");
    match v {
        // A one-element tuple needs its comma.
        Value::List(l) if syn == Syntax::Python && l.len() == 1 => format!("({joined},)"),
        Value::Map(m) if syn == Syntax::TypeScript && !m.is_empty() => format!("{{ {joined} }}"),
        _ => format!("{open}{joined}{close}"),
    }
}

/// Writes `v` starting at column `col` (nesting level `depth`), breaking
/// lists and maps one item per line when they do not fit in [`WIDTH`].
fn layout(v: &Value, syn: Syntax, depth: usize, col: usize, out: &mut String) {
    let flat = inline(v, syn);
    let items: Vec<(Option<&str>, &Value)> = match v {
        Value::List(l) => l.iter().map(|x| (None, x)).collect(),
        Value::Map(m) => m.iter().map(|(k, x)| (Some(k.as_str()), x)).collect(),
        _ => Vec::new(),
    };
    if col + flat.len() <= WIDTH || items.is_empty() {
        out.push_str(&flat);
        return;
    }
    let (open, close) = brackets(v, syn);
    let step = if syn == Syntax::Python { 4 } else { 2 };
    let pad = " ".repeat((depth + 1) * step);
    out.push_str(open);
    out.push('\n');
    for (i, (k, item)) in items.iter().enumerate() {
        out.push_str(&pad);
        let mut at = pad.len();
        if let Some(k) = k {
            let k = format!("{}: ", key(k, syn));
            at += k.len();
            out.push_str(&k);
        }
        // +1 for the comma after the item.
        layout(item, syn, depth + 1, at + 1, out);
        if syn != Syntax::Json || i + 1 < items.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str(&" ".repeat(depth * step));
    out.push_str(close);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_render_as_the_sdks_wrote_them() {
        let regex = |name: &str| PATTERNS.iter().find(|p| p.name == name).unwrap().regex();
        assert_eq!(regex("id"), "[a-z][a-z0-9-]{0,62}");
        assert_eq!(regex("env_name"), "[A-Za-z_][A-Za-z0-9_]*");
        assert_eq!(regex("secret_name"), "[a-z0-9][a-z0-9._-]{0,127}");
        assert_eq!(regex("sha256_digest"), "sha256:[0-9a-f]{64}");
        assert_eq!(regex("nix_package"), "[A-Za-z_][A-Za-z0-9_.+-]*");
    }

    #[test]
    fn pattern_matcher_and_classes() {
        let id = PATTERNS[0];
        assert!(id.matches("a") && id.matches("hello-app") && id.matches(&"a".repeat(63)));
        assert!(!id.matches("") && !id.matches("-a") && !id.matches(&"a".repeat(64)));
        assert!(in_class("a-z0-9._-", '-') && in_class("a-z0-9._-", '.') && !in_class("a-z", '-'));
        assert_eq!(quantifier(0, Some(62)), "{0,62}");
        assert_eq!(quantifier(64, Some(64)), "{64}");
        assert_eq!(quantifier(0, None), "*");
    }

    #[test]
    fn layout_breaks_long_values_and_keeps_short_ones() {
        let short = strs(&["a"]);
        assert_eq!(inline(&short, Syntax::Python), "(\"a\",)");
        assert_eq!(inline(&short, Syntax::TypeScript), "[\"a\"]");
        let long = strs(&["x".repeat(60).as_str(), "y".repeat(60).as_str()]);
        let mut out = String::new();
        layout(&long, Syntax::Json, 0, 0, &mut out);
        assert_eq!(
            out,
            format!("[\n  \"{}\",\n  \"{}\"\n]", "x".repeat(60), "y".repeat(60))
        );
        let m = Value::Map(vec![
            ("pip-tools".into(), Value::Int(1)),
            ("uv".into(), Value::Int(2)),
        ]);
        assert_eq!(
            inline(&m, Syntax::TypeScript),
            "{ \"pip-tools\": 1, uv: 2 }"
        );
        assert_eq!(wrap("aa bb cc"), ["aa bb cc"]);
        assert_eq!(
            scalar(&Value::Regex("a+".into()), Syntax::TypeScript).unwrap(),
            "/^a+$/"
        );
        assert_eq!(
            scalar(&Value::Bool(false), Syntax::Python).unwrap(),
            "False"
        );
    }
}
