import json
import subprocess
import sys
import textwrap

import pytest

import mvm


def code_of(fn, *args, **kwargs):
    with pytest.raises(mvm.DeclarationError) as info:
        fn(*args, **kwargs)
    return info.value.code


def test_decorator_returns_the_function_and_defaults_are_written_out():
    @mvm.app(source=mvm.local_path("."))
    def say_hello(name: str) -> str:
        return "hi " + name

    assert say_hello("x") == "hi x"
    ir = mvm.to_ir()
    assert ir["id"] == "say-hello"
    app = ir["apps"][0]
    assert app["name"] == "say-hello"
    assert app["entrypoints"] == [
        {
            "kind": "function", "name": "say-hello", "language": "python", "module": "test_app",
            "function": "say_hello", "format": "json", "working_dir": "/app", "primary": True,
        }
    ]  # fmt: skip
    assert app["dependencies"] == {"kind": "none"}
    assert app["hooks"] == {"before_build": [], "before_start": [], "after_start": [], "before_stop": []}
    assert (app["addons"], app["mounts"], app["env"], app["threat_tier"]) == ([], [], {}, "untrusted")
    assert (ir["volumes"], ir["extensions"], ir["schema_version"]) == ([], {}, "0.1")


def test_workload_id_and_entrypoints():
    mvm.workload(id="math-svc")

    @mvm.app(
        name="math",
        entrypoints=[
            mvm.entrypoint_function(module="mathsvc", function="add_one", primary=True),
            mvm.entrypoint(command=["python", "/app/w.py"]),
        ],
    )
    def math() -> None:
        pass

    ir = mvm.to_ir()
    assert ir["id"] == "math-svc"
    eps = ir["apps"][0]["entrypoints"]
    assert [(e["name"], e["primary"]) for e in eps] == [("add-one", True), ("main", False)]


def test_single_entrypoint_is_primary():
    @mvm.app(entrypoint=mvm.entrypoint(command=["python", "w.py"]))
    def worker() -> None:
        pass

    assert mvm.to_ir()["apps"][0]["entrypoints"][0]["primary"] is True


def test_hook_forms():
    @mvm.app(
        before_build=["uv", "sync", "--frozen"],
        before_start="python /app/migrate.py",
        after_start=mvm.hook(["python", "/app/health.py"]),
        before_stop=["echo bye", mvm.hook("sync"), ["kill", "1"]],
    )
    def service() -> None:
        pass

    hooks = mvm.to_ir()["apps"][0]["hooks"]
    assert hooks["before_build"] == [{"kind": "argv", "argv": ["uv", "sync", "--frozen"]}]
    assert hooks["before_start"] == [{"kind": "shell", "line": "python /app/migrate.py"}]
    assert hooks["after_start"] == [{"kind": "argv", "argv": ["python", "/app/health.py"]}]
    assert hooks["before_stop"] == [
        {"kind": "shell", "line": "echo bye"},
        {"kind": "shell", "line": "sync"},
        {"kind": "argv", "argv": ["kill", "1"]},
    ]


def test_env_literal_secret_and_var_mismatch():
    @mvm.app(env={"MODEL": "m", "B": mvm.literal("b"), "API_KEY": mvm.secret("api-key", var="API_KEY")})
    def f() -> None:
        pass

    assert mvm.to_ir()["apps"][0]["env"] == {
        "MODEL": {"kind": "literal", "value": "m"},
        "B": {"kind": "literal", "value": "b"},
        "API_KEY": {"kind": "secret_ref", "name": "api-key", "type": "token", "header": None, "hosts": []},
    }
    assert code_of(mvm.app, env={"TOKEN": mvm.secret("t", var="OTHER")}) == "E_SECRET_VAR_MISMATCH"


def test_secret_bindings_reach_the_ir():
    bound = mvm.secret("openai-api-key", var="OPENAI_API_KEY", type="bearer", hosts=["api.openai.com"])

    @mvm.app(network=mvm.network(mode="deny", allow_https=["api.openai.com"]), env={"OPENAI_API_KEY": bound})
    def f() -> None:
        pass

    env = mvm.to_ir()["apps"][0]["env"]
    assert env["OPENAI_API_KEY"] == {
        "kind": "secret_ref",
        "name": "openai-api-key",
        "type": "bearer",
        "header": None,
        "hosts": ["api.openai.com"],
    }
    # The IR holds its own copy: changing the helper's list later changes nothing.
    bound.value["hosts"].append("x.example")
    assert mvm.to_ir()["apps"][0]["env"]["OPENAI_API_KEY"]["hosts"] == ["api.openai.com"]


def test_unbound_secret_is_a_warning(capsys):
    @mvm.app(network=mvm.network(mode="deny", allow_https=["a.example"]), env={"K": mvm.secret("k", type="basic")})
    def f() -> None:
        pass

    mvm.emit_json()
    err = capsys.readouterr().err
    assert '/apps/0/env/K/hosts: warning[W_SECRET_UNBOUND]: secret "k" has type "basic" and no hosts' in err


_GRANTED = mvm.network(mode="deny", allow_https=["a.example", "b.example"])


def test_argument_errors():
    assert code_of(mvm.app, nmae="x") == "E_KWARG_UNKNOWN"
    assert code_of(mvm.app, entrypoint=mvm.entrypoint(command=["a"]), entrypoints=[]) == "E_KWARG_CONFLICT"
    assert code_of(mvm.app, resources=mvm.network()) == "E_KWARG_TYPE"
    assert code_of(mvm.app, image="python:3.12") == "E_KWARG_TYPE"
    assert code_of(mvm.app, "positional") == "E_KWARG_CONFLICT"


def test_two_apps_in_one_file():
    @mvm.app()
    def one() -> None:
        pass

    with pytest.raises(mvm.DeclarationError) as info:

        @mvm.app()
        def two() -> None:
            pass

    assert info.value.code == "E_APPS_COUNT"


def test_no_declaration():
    assert code_of(mvm.to_ir) == "E_NO_DECLARATION"


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({"name": "Bad_Name"}, "E_ID_INVALID"),
        ({"network": mvm.network(mode="bridge", egress=[mvm.host_port("*.example.com", 443)])}, "E_NETWORK_WILDCARD"),
        ({"network": mvm.network(mode="bridge", egress=[mvm.host_port("0.0.0.0", 443)])}, "E_NETWORK_WILDCARD"),
        ({"network": mvm.network(mode="bridge", egress=[mvm.host_port("10.0.0.0/8", 443)])}, "E_NETWORK_WILDCARD"),
        ({"network": mvm.network(mode="bridge", egress=[mvm.host_port("[::]", 443)])}, "E_NETWORK_WILDCARD"),
        ({"network": mvm.network(mode="bridge", egress=[mvm.host_port("https://a.com", 443)])}, "E_INVALID_VALUE"),
        ({"network": mvm.network(mode="none", ports=[mvm.port(80)])}, "E_NETWORK_EGRESS_CLOSED"),
        ({"source": mvm.local_path("~/code")}, "E_SOURCE_ESCAPES"),
        ({"dependencies": mvm.python_deps(lockfile="../uv.lock")}, "E_INVALID_VALUE"),
        ({"network": mvm.network(mode="none", dns=mvm.dns_system())}, "E_DNS_WITHOUT_NETWORK"),
        ({"network": mvm.network(mode="host")}, "E_HOST_NETWORK_UNTRUSTED"),
        ({"resources": mvm.resources(memory_mb=32)}, "E_RESOURCES_RANGE"),
        ({"resources": mvm.resources(cpu_cores=65)}, "E_RESOURCES_RANGE"),
        ({"source": mvm.local_path("../elsewhere")}, "E_SOURCE_ESCAPES"),
        ({"source": mvm.local_path("/etc")}, "E_SOURCE_ESCAPES"),
        ({"env": {"1BAD": "x"}}, "E_ENV_NAME_INVALID"),
        ({"env": {"K": mvm.secret("Bad Name")}}, "E_SECRET_NAME_INVALID"),
        ({"network": _GRANTED, "env": {"K": mvm.secret("k", type="header", hosts=["a.example"])}}, "E_SECRET_HEADER_INVALID"),
        ({"network": _GRANTED, "env": {"K": mvm.secret("k", type="basic", header="X-K", hosts=["a.example"])}}, "E_SECRET_HEADER_INVALID"),
        ({"network": _GRANTED, "env": {"K": mvm.secret("k", type="header", header="X K", hosts=["a.example"])}}, "E_SECRET_HEADER_INVALID"),
        ({"network": _GRANTED, "env": {"K": mvm.secret("k", type="header", header="Transfer-Encoding")}}, "E_SECRET_HEADER_INVALID"),
        ({"network": _GRANTED, "env": {"K": mvm.secret("k", hosts=["a.example:443"])}}, "E_SECRET_HOST_INVALID"),
        ({"network": _GRANTED, "env": {"K": mvm.secret("k", hosts=[""])}}, "E_SECRET_HOST_INVALID"),
        ({"network": _GRANTED, "env": {"K": mvm.secret("k", hosts=["*.example"])}}, "E_NETWORK_WILDCARD"),
        ({"network": _GRANTED, "env": {"K": mvm.secret("k", hosts=["c.example"])}}, "E_SECRET_HOST_NOT_GRANTED"),
        ({"env": {"K": mvm.secret("k", hosts=["a.example"])}}, "E_SECRET_HOST_NOT_GRANTED"),
        (
            {
                "network": _GRANTED,
                "env": {
                    "K": mvm.secret("k", type="bearer", hosts=["a.example"]),
                    "L": mvm.secret("l", type="header", header="authorization"),
                },
            },
            "E_SECRET_BINDING_CONFLICT",
        ),
        ({"entrypoint": mvm.entrypoint(command=[])}, "E_EMPTY_COMMAND"),
        ({"before_start": ""}, "E_EMPTY_COMMAND"),
        ({"image": mvm.nix_packages(["not a name"])}, "E_INVALID_VALUE"),
        (
            {
                "entrypoints": [
                    mvm.entrypoint_function(module="m", function="a", primary=True),
                    mvm.entrypoint_function(module="m", function="b", primary=True),
                ]
            },
            "E_PRIMARY_ENTRYPOINT",
        ),
        (
            {
                "entrypoints": [
                    mvm.entrypoint_function(module="m", function="a"),
                    mvm.entrypoint_function(module="m", function="b"),
                ]
            },
            "E_PRIMARY_ENTRYPOINT",
        ),
    ],
)
def test_ir_validation_codes(kwargs, code):
    @mvm.app(**kwargs)
    def fn() -> None:
        pass

    assert code_of(mvm.to_ir) == code


def test_first_error_is_the_first_in_json_pointer_order():
    # "/apps/0/env/..." sorts before "/apps/0/name", as in mvm_ir::validate.
    @mvm.app(name="Bad", env={"1BAD": "x"})
    def fn() -> None:
        pass

    assert code_of(mvm.to_ir) == "E_ENV_NAME_INVALID"


def test_host_network_allowed_when_trusted_and_warnings_do_not_stop():
    @mvm.app(
        network=mvm.network(mode="host"),
        threat_tier="trusted",
        env={"API_TOKEN": "literal"},
        image=mvm.oci_image("debian:12"),
    )
    def fn() -> None:
        pass

    assert mvm.to_ir()["apps"][0]["network"]["mode"] == "host"


def _run(tmp_path, source, *args):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "tool.py"
    path.write_text(textwrap.dedent(source))
    return subprocess.run([sys.executable, str(path), *args], capture_output=True, cwd=tmp_path)


def test_emit_json_prints_canonical_bytes_without_newline(tmp_path):
    proc = _run(
        tmp_path,
        """
        import mvm
        mvm.workload(id="w")

        @mvm.app(name="t\u00e9", env={"API_KEY": "x"})
        def run(prompt: str) -> str:
            return prompt

        mvm.emit_json()
        """,
    )
    assert proc.returncode == 1  # "té" is not an id
    assert b"E_ID_INVALID" in proc.stderr
    ok = _run(
        tmp_path / "sub",
        """
        import mvm

        @mvm.app(name="tool", env={"API_KEY": "x"})
        def run(prompt: str) -> str:
            return prompt

        mvm.emit_json()
        """,
    )
    assert ok.returncode == 0, ok.stderr
    assert not ok.stdout.endswith(b"\n")
    ir = json.loads(ok.stdout)
    assert ir["apps"][0]["entrypoints"][0]["module"] == "tool"
    assert b"W_SECRET_LITERAL" in ok.stderr
    from mvm.canonical import canonical_bytes

    assert canonical_bytes(ir) == ok.stdout


def test_module_name_is_the_file_name(tmp_path):
    from mvm.declaration import _module_name

    assert _module_name(str(tmp_path / "app.py")) == "app"
    assert _module_name(str(tmp_path / "src" / "tool.py")) == "tool"
