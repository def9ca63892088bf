//! The helper allowlist: each helper's parameters, in positional order, and
//! "did you mean" suggestions for names outside it.

/// A helper's parameters. Arguments may be given positionally in this order
/// (up to `positional`) or by keyword/property name.
pub struct Signature {
    pub name: &'static str,
    pub params: &'static [&'static str],
    pub positional: usize,
    pub required: &'static [&'static str],
}

const fn sig(
    name: &'static str,
    params: &'static [&'static str],
    positional: usize,
    required: &'static [&'static str],
) -> Signature {
    Signature {
        name,
        params,
        positional,
        required,
    }
}

/// Hook phase keywords shared by `mvm.app` and `mvm.addon`.
pub const PHASES: [&str; 4] = ["before_build", "before_start", "after_start", "before_stop"];

pub const SIGNATURES: &[Signature] = &[
    sig("workload", &["id"], 1, &["id"]),
    // `mvm.app` is keyword-only: its fields have no natural order.
    sig(
        "app",
        &[
            "name",
            "source",
            "image",
            "resources",
            "dependencies",
            "network",
            "env",
            "entrypoint",
            "entrypoints",
            "before_build",
            "before_start",
            "after_start",
            "before_stop",
            "addons",
            "threat_tier",
        ],
        0,
        &[],
    ),
    sig("local_path", &["path", "include", "exclude"], 3, &[]),
    sig("python_image", &["python", "packages"], 2, &[]),
    sig("node_image", &["node", "packages"], 2, &[]),
    sig("nix_packages", &["packages"], 1, &["packages"]),
    sig("oci_image", &["reference", "digest"], 2, &["reference"]),
    // `cpu` is an alias of `cpu_cores` (the TypeScript seed uses it); keyword only.
    sig(
        "resources",
        &["cpu_cores", "memory_mb", "rootfs_size_mb", "cpu"],
        3,
        &[],
    ),
    sig("python_deps", &["lockfile", "tool"], 2, &[]),
    sig("node_deps", &["lockfile", "tool"], 2, &[]),
    sig("no_deps", &[], 0, &[]),
    sig(
        "network",
        &["mode", "ports", "egress", "dns", "allow_https"],
        5,
        &[],
    ),
    sig("egress", &["allowlist"], 1, &["allowlist"]),
    sig("host_port", &["host", "port"], 2, &["host", "port"]),
    sig("port", &["guest", "host", "proto"], 3, &["guest"]),
    sig("dns_system", &[], 0, &[]),
    sig("dns_none", &[], 0, &[]),
    sig("dns_resolver", &["host", "port"], 2, &["host"]),
    sig("literal", &["value"], 1, &["value"]),
    // `type`, `hosts` and `header` bind the secret; keyword only.
    sig(
        "secret",
        &["name", "var", "type", "hosts", "header"],
        2,
        &["name"],
    ),
    sig(
        "entrypoint_function",
        &["module", "function", "primary", "name"],
        4,
        &["module", "function"],
    ),
    sig(
        "entrypoint",
        &["command", "primary", "name"],
        3,
        &["command"],
    ),
    sig("hook", &["cmd"], 1, &["cmd"]),
    sig(
        "addon",
        &[
            "name",
            "path",
            "before_build",
            "before_start",
            "after_start",
            "before_stop",
        ],
        2,
        &["name", "path"],
    ),
];

pub fn signature(helper: &str) -> Option<&'static Signature> {
    SIGNATURES.iter().find(|s| s.name == helper)
}

/// `memoryMb` → `memory_mb`, `dnsSystem` → `dns_system`; snake_case passes through.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The closest candidate within a small edit distance, for "did you mean".
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(diag + usize::from(ca != *cb));
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_and_case() {
        assert_eq!(
            closest("pyhton_image", SIGNATURES.iter().map(|s| s.name)),
            Some("python_image")
        );
        assert_eq!(closest("zzzzzzzz", SIGNATURES.iter().map(|s| s.name)), None);
        assert_eq!(snake_case("rootfsSizeMb"), "rootfs_size_mb");
        assert_eq!(snake_case("dns_system"), "dns_system");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
