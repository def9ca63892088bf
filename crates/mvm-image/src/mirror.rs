//! The Debian mirror the host's apt is configured with. Roots are fetched
//! from it, so no host name is ever written into mvm itself.

use std::path::Path;

/// Codenames and aliases of Debian's main archive. Entries for other suites
/// (`-security`, `-updates`, third-party repositories such as `nodistro`)
/// do not name a mirror of the main archive.
const DEBIAN_SUITES: &[&str] = &[
    "buster",
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "duke",
    "sid",
    "stable",
    "testing",
    "unstable",
    "oldstable",
];

/// `MVM_DEBIAN_MIRROR` if set, else the first main-archive `deb` URI in
/// `<apt_dir>/sources.list.d/*.sources` (deb822) or `*.list` or `<apt_dir>/sources.list`.
pub fn host_mirror(apt_dir: &Path) -> Option<String> {
    if let Ok(url) = std::env::var("MVM_DEBIAN_MIRROR")
        && !url.trim().is_empty()
    {
        return Some(url.trim().to_string());
    }
    let mut files: Vec<_> = std::fs::read_dir(apt_dir.join("sources.list.d"))
        .map(|dir| dir.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files.insert(0, apt_dir.join("sources.list"));
    files.iter().find_map(|path| {
        let text = std::fs::read_to_string(path).ok()?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("sources") => from_deb822(&text),
            Some("list") => from_one_line(&text),
            _ if path.file_name().is_some_and(|n| n == "sources.list") => from_one_line(&text),
            _ => None,
        }
    })
}

fn is_debian_suite(suite: &str) -> bool {
    DEBIAN_SUITES.contains(&suite)
}

/// deb822 stanzas: `Types: deb`, `URIs: ...`, `Suites: ...`; `Enabled: no` skips.
fn from_deb822(text: &str) -> Option<String> {
    text.split("\n\n").find_map(|stanza| {
        let field = |name: &str| {
            stanza.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_string())
            })
        };
        let enabled = field("Enabled").is_none_or(|v| !v.eq_ignore_ascii_case("no"));
        let is_deb = field("Types")?.split_whitespace().any(|t| t == "deb");
        let suites = field("Suites")?;
        let uri = field("URIs")?.split_whitespace().next()?.to_string();
        (enabled && is_deb && suites.split_whitespace().any(is_debian_suite)).then_some(uri)
    })
}

/// One-line form: `deb [options] URI SUITE COMPONENT...`.
fn from_one_line(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next()? != "deb" {
            return None;
        }
        let mut uri = words.next()?;
        if uri.starts_with('[') {
            // Options may span several words: skip to the one closing them.
            while !uri.ends_with(']') {
                uri = words.next()?;
            }
            uri = words.next()?;
        }
        let suite = words.next()?;
        is_debian_suite(suite).then(|| uri.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_main_archive_and_skips_others() {
        let apt = tempfile::tempdir().unwrap();
        let d = apt.path().join("sources.list.d");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(
            d.join("a-nodesource.sources"),
            "Types: deb\nURIs: https://deb.example.com/node_20.x\nSuites: nodistro\nComponents: main\n",
        )
        .unwrap();
        std::fs::write(
            d.join("debian.sources"),
            "Types: deb\nURIs: http://sec.example.org/debian-security\nSuites: bookworm-security\nComponents: main\n\n\
             Types: deb\n# comment\nURIs: http://mirror.example.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n",
        )
        .unwrap();
        assert_eq!(
            host_mirror(apt.path()).as_deref(),
            Some("http://mirror.example.org/debian")
        );
    }

    #[test]
    fn one_line_sources_with_options() {
        assert_eq!(
            from_one_line(
                "# x\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian trixie main\n"
            )
            .as_deref(),
            Some("http://m.example/debian")
        );
        assert_eq!(
            from_one_line("deb https://packages.example.com/apt cloud-sdk-bookworm main\n"),
            None
        );
    }
}
