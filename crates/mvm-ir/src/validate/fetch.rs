//! Spotting hook commands that pull code from the network without pinning it
//! (`W_HOOK_UNPINNED_FETCH`): what runs would change from one build to the next.
//!
//! This is a heuristic over the words of a command, not a shell parser: it
//! understands quoting and the `| || && ; &` separators, which covers the
//! usual `curl ... | sh`, `pip install x` and `npm install` lines.

/// Why a shell line fetches unpinned code, if it does.
pub(super) fn shell_line(line: &str) -> Option<String> {
    let commands = split_commands(line);
    let substituted = ["$(curl", "$(wget", "`curl", "`wget", "<(curl", "<(wget"]
        .iter()
        .any(|s| line.contains(s));
    for (i, cmd) in commands.iter().enumerate() {
        let words = command_words(&cmd.words);
        let Some(name) = words.first().map(|w| program(w)) else {
            continue;
        };
        if is_fetcher(name) {
            // Everything after this command in the same pipeline reads its output.
            let piped_to_shell = commands[i + 1..]
                .iter()
                .take_while(|c| c.piped_in)
                .any(|c| {
                    command_words(&c.words)
                        .first()
                        .is_some_and(|w| is_interpreter(program(w)))
                });
            if piped_to_shell {
                return Some(format!("{name} output is piped to a shell or interpreter"));
            }
        }
        if substituted && is_interpreter(name) {
            return Some(format!(
                "{name} runs code downloaded by a command substitution"
            ));
        }
        if let Some(reason) = words_fetch(words) {
            return Some(reason);
        }
    }
    None
}

/// Why an argv fetches unpinned code, if it does.
pub(super) fn argv(argv: &[String]) -> Option<String> {
    let words = command_words(argv);
    let name = program(words.first()?);
    if is_interpreter(name) {
        // `sh -c LINE` (or `bash -euc LINE`) runs a shell line.
        let runs_line = |w: &String| w.starts_with('-') && !w.starts_with("--") && w.contains('c');
        if let Some(pos) = words.iter().position(runs_line)
            && let Some(line) = words.get(pos + 1)
        {
            return shell_line(line);
        }
    }
    words_fetch(words)
}

/// `pip install` and `npm install` checks over one command's words.
fn words_fetch(words: &[String]) -> Option<String> {
    let name = program(words.first()?);
    let rest = &words[1..];
    let pip_args = if name.starts_with("pip") {
        Some(rest)
    } else if name.starts_with("python") && rest.len() >= 2 && rest[0] == "-m" && rest[1] == "pip" {
        Some(&rest[2..])
    } else if name == "uv" && rest.first().is_some_and(|w| w == "pip") {
        Some(&rest[1..])
    } else {
        None
    };
    if let Some(args) = pip_args
        && args.first().is_some_and(|w| w == "install")
        && !pip_pinned(&args[1..])
    {
        return Some(
            "pip install without --require-hashes or == pins on every requirement".to_owned(),
        );
    }
    if name == "npm"
        && rest
            .first()
            .is_some_and(|w| matches!(w.as_str(), "install" | "i" | "in" | "add"))
    {
        return Some(format!(
            "npm {} resolves versions at build time (npm ci installs the lockfile)",
            rest[0]
        ));
    }
    None
}

/// Whether pip install arguments pin everything they fetch.
fn pip_pinned(args: &[String]) -> bool {
    if args.iter().any(|a| a == "--require-hashes") {
        return true;
    }
    let mut requirements = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            // A requirements file may hold anything; without hashes, it is unpinned.
            "-r" | "--requirement" | "-c" | "--constraint" | "-e" | "--editable" => return false,
            // Options that take a separate value.
            "-i" | "--index-url" | "--extra-index-url" | "-f" | "--find-links" | "-t"
            | "--target" | "--prefix" | "--root" => {
                iter.next();
            }
            a if a.starts_with('-') => {}
            a => requirements.push(a),
        }
    }
    // Local paths install what is in the bundle; anything else must be `name==version`.
    requirements
        .iter()
        .all(|r| r.starts_with('.') || r.starts_with('/') || r.contains("=="))
}

fn is_fetcher(name: &str) -> bool {
    matches!(name, "curl" | "wget")
}

fn is_interpreter(name: &str) -> bool {
    matches!(
        name,
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "ash" | "fish" | "perl" | "ruby" | "node"
    ) || name.starts_with("python")
}

/// The program name of a command word: `/usr/bin/curl` → `curl`.
fn program(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// A command's words without leading `VAR=value` assignments and wrappers
/// such as `sudo` that run the rest of the line as a command.
fn command_words(words: &[String]) -> &[String] {
    let skip = words
        .iter()
        .take_while(|w| {
            let assignment = w
                .split_once('=')
                .is_some_and(|(k, _)| !k.is_empty() && !k.contains('-'));
            assignment
                || matches!(
                    w.as_str(),
                    "sudo" | "env" | "exec" | "command" | "nohup" | "time"
                )
        })
        .count();
    &words[skip..]
}

struct Command {
    words: Vec<String>,
    /// Whether this command reads the previous one's output through `|`.
    piped_in: bool,
}

/// Split a shell line into commands at `| || && ; &` and newlines outside
/// quotes, and each command into words with quotes removed.
fn split_commands(line: &str) -> Vec<Command> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut piped_in = false;
    let mut chars = line.chars().peekable();
    let mut quote: Option<char> = None;
    let finish = |words: &mut Vec<String>, word: &mut Option<String>| {
        if let Some(w) = word.take() {
            words.push(w);
        }
    };
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            } else if c == '\\' && q == '"' {
                if let Some(next) = chars.next() {
                    word.get_or_insert_default().push(next);
                }
            } else {
                word.get_or_insert_default().push(c);
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            '\\' => {
                if let Some(next) = chars.next() {
                    word.get_or_insert_default().push(next);
                }
            }
            '|' | '&' | ';' | '\n' => {
                finish(&mut words, &mut word);
                let doubled = (c == '|' || c == '&') && chars.peek() == Some(&c);
                if doubled {
                    chars.next();
                }
                commands.push(Command {
                    words: std::mem::take(&mut words),
                    piped_in,
                });
                piped_in = c == '|' && !doubled;
            }
            c if c.is_whitespace() => finish(&mut words, &mut word),
            c => word.get_or_insert_default().push(c),
        }
    }
    finish(&mut words, &mut word);
    commands.push(Command { words, piped_in });
    commands
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv_of(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn curl_or_wget_piped_to_a_shell() {
        for line in [
            "curl -fsSL https://get.example.com | sh",
            "curl -fsSL https://x | sudo bash -s -- --yes",
            "wget -qO- https://x|python3",
            "set -e; curl https://x | tee install.sh | sh",
            "sh -c \"$(curl -fsSL https://x)\"",
            "bash <(wget -qO- https://x)",
            "/usr/bin/curl https://x | /bin/sh",
        ] {
            assert!(shell_line(line).is_some(), "{line}");
        }
        for line in [
            "curl -fsS http://127.0.0.1:8080/health",
            "curl -o file https://x && sha256sum -c file.sha256",
            "curl https://x || sh -c 'echo failed'",
            "echo 'curl x | sh'",
            "export HELLO_BANNER='hi'",
        ] {
            assert!(shell_line(line).is_none(), "{line}");
        }
    }

    #[test]
    fn pip_install_needs_pins_or_hashes() {
        for line in [
            "pip install requests",
            "pip3 install requests==2.32.3 numpy",
            "python3 -m pip install -U pip",
            "uv pip install flask",
            "pip install -r requirements.txt",
            "cd /app && PIP_NO_CACHE_DIR=1 pip install 'requests>=2'",
        ] {
            assert!(shell_line(line).is_some(), "{line}");
        }
        for line in [
            "pip install requests==2.32.3 'numpy==2.1.0'",
            "pip install --require-hashes -r requirements.txt",
            "pip install --no-deps .",
            "pip install -i https://pypi.example/simple six==1.16.0",
            "pip list",
            "pip download x",
        ] {
            assert!(shell_line(line).is_none(), "{line}");
        }
    }

    #[test]
    fn npm_install_but_not_npm_ci() {
        assert!(shell_line("npm install").is_some());
        assert!(shell_line("npm i left-pad").is_some());
        assert!(shell_line("cd web; npm ci && npm run build").is_none());
    }

    #[test]
    fn argv_forms() {
        assert!(argv(&argv_of(&["pip", "install", "requests"])).is_some());
        assert!(argv(&argv_of(&["npm", "install"])).is_some());
        assert!(argv(&argv_of(&["sh", "-c", "curl https://x | sh"])).is_some());
        assert!(argv(&argv_of(&["/bin/bash", "-euc", "curl https://x | sh"])).is_some());
        assert!(argv(&argv_of(&["curl", "-fsS", "http://127.0.0.1:8080/health"])).is_none());
        assert!(argv(&argv_of(&["npm", "ci"])).is_none());
        assert!(argv(&[]).is_none());
    }
}
