//! Exact messages for the common mistakes: what a person sees is part of the
//! contract, so these compare the whole printed text.

use std::path::Path;

use mvm_decl::compile_declaration;

/// Every finding printed, one after another, as the CLI prints them.
fn printed(file: &str, source: &str) -> String {
    let path = Path::new(file);
    match compile_declaration(path, source, path) {
        Ok(_) => panic!("{file} compiled, but an error was expected"),
        Err(findings) => findings
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn py(body: &str) -> String {
    printed(
        "app.py",
        &format!("import mvm\n\n{body}\ndef f():\n    pass\n"),
    )
}

const TS_HEAD: &str = "import * as mvm from \"mvm-sdk\";\n";

#[test]
fn misspelt_helper_suggests_the_right_one() {
    assert_eq!(
        py(r#"@mvm.app(name="x", image=mvm.pyhton_image(python="3.12"))"#),
        "app.py:3:26: error[E_HELPER_UNKNOWN]: `mvm.pyhton_image` is not an mvm helper\n  hint: did you mean mvm.python_image?"
    );
    assert_eq!(
        printed(
            "app.ts",
            &format!(
                "{TS_HEAD}export const f = mvm.app({{ source: mvm.locaPath(\".\") }})(() => 1);\n"
            )
        ),
        "app.ts:2:36: error[E_HELPER_UNKNOWN]: `mvm.locaPath` is not an mvm helper\n  hint: did you mean mvm.localPath?"
    );
}

#[test]
fn unknown_kwarg_lists_the_allowed_names() {
    assert_eq!(
        py(r#"@mvm.app(name="x", resources=mvm.resources(cpu_cores=1, memroy_mb=512))"#),
        "app.py:3:57: error[E_KWARG_UNKNOWN]: mvm.resources() has no argument `memroy_mb`\n  \
         hint: did you mean `memory_mb`? mvm.resources accepts: cpu_cores, memory_mb, rootfs_size_mb, cpu"
    );
    assert_eq!(
        printed(
            "app.ts",
            &format!(
                "{TS_HEAD}export const f = mvm.app({{ name: \"x\", resources: mvm.resources({{ memoryMB: 512 }}) }})(() => 1);\n"
            )
        ),
        "app.ts:2:66: error[E_KWARG_UNKNOWN]: mvm.resources() has no argument `memoryMB`\n  \
         hint: did you mean `memoryMb`? mvm.resources accepts: cpu_cores/cpuCores, memory_mb/memoryMb, rootfs_size_mb/rootfsSizeMb, cpu"
    );
}

#[test]
fn cpu_with_cpu_cores_conflicts() {
    assert_eq!(
        py(r#"@mvm.app(name="x", resources=mvm.resources(cpu_cores=2, cpu=2))"#),
        "app.py:3:61: error[E_KWARG_CONFLICT]: mvm.resources() is given both `cpu` and `cpu_cores`\n  \
         hint: `cpu` is an alias of `cpu_cores`; keep one of them"
    );
}

#[test]
fn fstring_with_interpolation_is_not_literal() {
    assert_eq!(
        py(r#"@mvm.app(name="x", image=mvm.python_image(python=f"{V}"))"#),
        "app.py:3:52: error[E_NOT_LITERAL]: an f-string with an interpolated `{...}` is not a literal value\n  \
         hint: write the final string out literally; interpolation would need the file to run"
    );
}

#[test]
fn variable_instead_of_literal() {
    assert_eq!(
        py("@mvm.app(name=NAME)"),
        "app.py:3:15: error[E_NOT_LITERAL]: `NAME` is a variable, not a literal value\n  \
         hint: declarations are read without running the file: write the value as a literal (string, number, boolean, \
         None, list, dict) or an mvm helper call; the value of `NAME` is only known when the file runs"
    );
}

#[test]
fn secret_var_must_equal_env_key() {
    assert_eq!(
        py(r#"@mvm.app(name="x", env={"OPENAI_API_KEY": mvm.secret("openai", var="OPENAI_KEY")})"#),
        "app.py:3:68: error[E_SECRET_VAR_MISMATCH]: mvm.secret(var=\"OPENAI_KEY\") does not match its env key \"OPENAI_API_KEY\"\n  \
         hint: the guest sees the secret as $OPENAI_API_KEY; drop `var` or set it to \"OPENAI_API_KEY\""
    );
}

#[test]
fn wildcard_egress_host_points_at_the_host() {
    assert_eq!(
        py(
            r#"@mvm.app(name="x", network=mvm.network(mode="bridge", egress=mvm.egress([mvm.host_port("*.example.com", 443)])))"#
        ),
        "app.py:3:88: error[E_NETWORK_WILDCARD]: egress host \"*.example.com\" contains \"*\"\n  \
         hint: list each host the app needs by name or address, e.g. \"pypi.org\"; wildcards and ranges are not allowed"
    );
}

#[test]
fn two_decorated_functions() {
    assert_eq!(
        printed(
            "app.py",
            "import mvm\n\n@mvm.app(name=\"a\")\ndef a():\n    pass\n\n@mvm.app(name=\"b\")\ndef b():\n    pass\n"
        ),
        "app.py:7:1: error[E_APPS_COUNT]: a second @mvm.app function `b`; `a` is already declared in this file\n  \
         hint: declare exactly one app per file; move the other function into its own declaration file"
    );
}

#[test]
fn syntax_errors_carry_the_parser_position() {
    assert_eq!(
        py(r#"@mvm.app(name="x""#),
        "app.py:3:18: error[E_SYNTAX]: invalid Python syntax: Expected `)`, found newline\n  \
         hint: fix the syntax error; the declaration file must parse as Python"
    );
    assert_eq!(
        printed(
            "app.ts",
            &format!("{TS_HEAD}export const f = mvm.app({{ name: \"x\", )(() => 1);\n")
        ),
        "app.ts:2:39: error[E_SYNTAX]: invalid TypeScript syntax: Unexpected token\n  \
         hint: fix the syntax error; the declaration file must parse as TypeScript"
    );
}

/// Hints the lowering builds from its tables (`mvm_decl::tables`) and the
/// IR's ranges; their text is what it was when each was written out.
#[test]
fn hints_built_from_tables() {
    assert_eq!(
        py(r#"@mvm.app(name="x", network=mvm.network(mode="open"))"#),
        "app.py:3:45: error[E_INVALID_VALUE]: `mode` of mvm.network() is \"open\", which is not one of \"none\", \"deny\", \"bridge\", \"host\"\n  \
         hint: use one of \"none\", \"deny\", \"bridge\", \"host\""
    );
    assert_eq!(
        py(r#"@mvm.app(name="x", dependencies=mvm.python_deps(tool="poetry"))"#),
        "app.py:3:54: error[E_INVALID_VALUE]: `tool` of mvm.python_deps() is \"poetry\", which is not one of \"uv\", \"pip-tools\", \"pip_tools\"\n  \
         hint: use one of \"uv\", \"pip-tools\", \"pip_tools\""
    );
    assert_eq!(
        py(r#"@mvm.app(name="x", resources=mvm.resources(memory_mb=-1))"#),
        "app.py:3:54: error[E_RESOURCES_RANGE]: `memory_mb` of mvm.resources() is -1, which is below its range\n  \
         hint: cpu_cores is 1..=64, memory_mb 64..=65536, rootfs_size_mb 64..=1048576"
    );
    assert_eq!(
        py(r#"@mvm.app(name="x", network=mvm.network(mode="bridge", ports=[mvm.port(70000)]))"#),
        "app.py:3:71: error[E_INVALID_VALUE]: port 70000 of mvm.port() is out of range\n  \
         hint: ports are 1 to 65535 (0 for \"any free port\" on the host side)"
    );
    assert_eq!(
        py(r#"@mvm.app(name="x", network=mvm.network(mode="host", allow_https=["pypi.org"]))"#),
        "app.py:3:65: error[E_KWARG_CONFLICT]: `allow_https` cannot be used with mode \"host\"\n  \
         hint: use mode=\"deny\" (closed except these HTTPS hosts) or mode=\"bridge\""
    );
}

#[test]
fn secret_binding_mistakes() {
    assert_eq!(
        py(r#"@mvm.app(name="x", env={"K": mvm.secret("k", type="Bearer")})"#),
        "app.py:3:51: error[E_INVALID_VALUE]: `type` of mvm.secret() is \"Bearer\", which is not one of \"token\", \"bearer\", \"basic\", \"header\"\n  \
         hint: use one of \"token\", \"bearer\", \"basic\", \"header\""
    );
    assert_eq!(
        printed(
            "app.ts",
            &format!(
                "{TS_HEAD}export const f = mvm.app({{ name: \"x\", env: {{ K: mvm.secret(\"k\", {{ hosts: \"a.example\" }}) }} }})(() => 1);\n"
            )
        ),
        "app.ts:2:74: error[E_KWARG_TYPE]: `hosts` of mvm.secret() must be a list of strings, not a string\n  \
         hint: write a list of strings here"
    );
    assert_eq!(
        py(
            r#"@mvm.app(name="x", network=mvm.network(mode="deny", allow_https=["a.example"]), env={"K": mvm.secret("k", type="bearer", hosts=["b.example"])})"#
        ),
        "app.py:3:129: error[E_SECRET_HOST_NOT_GRANTED]: secret \"k\" is bound to \"b.example\", which is not one of the app's egress grants\n  \
         hint: grant it as well (mvm.network(mode=\"deny\", allow_https=[\"b.example\"]), or an egress allowlist entry {\"host\": \"b.example\", \"port\": 443}), or remove it from the secret's hosts"
    );
}

#[test]
fn an_unbound_secret_warns_at_its_call() {
    let src = "import mvm\n\n@mvm.app(name=\"x\", network=mvm.network(mode=\"deny\", allow_https=[\"a.example\"]),\n    env={\"K\": mvm.secret(\"k\", type=\"basic\")})\ndef f():\n    pass\n";
    let path = Path::new("app.py");
    let Ok(mvm_decl::Outcome::Declared(d)) = compile_declaration(path, src, path) else {
        panic!("an unbound secret is only a warning")
    };
    let printed: Vec<String> = d.findings.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        printed,
        [
            "app.py:4:15: warning[W_SECRET_UNBOUND]: secret \"k\" has type \"basic\" and no hosts: the host adds it to every request to any of the app's egress grants\n  \
          hint: bind it to the hosts that need it, e.g. hosts=[\"api.openai.com\"]"
        ]
    );
}
