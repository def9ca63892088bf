import pytest

import mvm


def code_of(fn, *args, **kwargs):
    with pytest.raises(mvm.DeclarationError) as info:
        fn(*args, **kwargs)
    return info.value.code


def test_local_path_defaults_and_positional_path():
    assert mvm.local_path().value == {"kind": "local_path", "path": ".", "include": ["**"], "exclude": []}
    assert mvm.local_path("src", include=["a/**"], exclude=["*.pyc"]).value == {
        "kind": "local_path", "path": "src", "include": ["a/**"], "exclude": ["*.pyc"],
    }  # fmt: skip
    assert code_of(mvm.local_path, ".", include="*.py") == "E_KWARG_TYPE"


def test_python_image_versions():
    assert mvm.python_image().value == {"kind": "nix_packages", "packages": ["python313"]}
    assert mvm.python_image(python="3.12", packages=["uv"]).value["packages"] == ["python312", "uv"]
    assert code_of(mvm.python_image, python="3") == "E_INVALID_VALUE"
    assert code_of(mvm.python_image, python=3.12) == "E_KWARG_TYPE"
    # Positional in the static compiler's order: python, packages.
    assert mvm.python_image("3.11", ["git"]).value["packages"] == ["python311", "git"]
    assert code_of(mvm.python_image, "3.12", [], "x") == "E_KWARG_CONFLICT"


def test_node_image_and_nix_packages_and_oci():
    assert mvm.node_image().value == {"kind": "nix_packages", "packages": ["nodejs_22"]}
    assert mvm.node_image(node="20", packages=["git"]).value["packages"] == ["nodejs_20", "git"]
    assert mvm.nix_packages(["python312", "uv"]).value == {"kind": "nix_packages", "packages": ["python312", "uv"]}
    assert mvm.oci_image("debian:12").value == {"kind": "oci_base", "reference": "debian:12", "digest": None}
    assert code_of(mvm.nix_packages, "uv") == "E_KWARG_TYPE"


def test_resources_defaults_alias_and_conflict():
    assert mvm.resources().value == {"cpu_cores": 1, "memory_mb": 256, "rootfs_size_mb": 512}
    assert mvm.resources(cpu=2, memory_mb=512).value == {"cpu_cores": 2, "memory_mb": 512, "rootfs_size_mb": 512}
    assert code_of(mvm.resources, cpu=1, cpu_cores=1) == "E_KWARG_CONFLICT"
    assert code_of(mvm.resources, memory_mb="512") == "E_KWARG_TYPE"
    assert code_of(mvm.resources, memory_mb=True) == "E_KWARG_TYPE"
    assert code_of(mvm.resources, memroy_mb=512) == "E_KWARG_UNKNOWN"


def test_dependencies():
    assert mvm.python_deps().value == {"kind": "python", "lockfile": "uv.lock", "tool": "uv"}
    assert mvm.python_deps(lockfile="requirements.txt", tool="pip-tools").value["tool"] == "pip_tools"
    assert mvm.node_deps().value == {"kind": "node", "lockfile": "package-lock.json", "tool": "npm"}
    assert mvm.node_deps(lockfile="pnpm-lock.yaml", tool="pnpm").value["tool"] == "pnpm"
    assert mvm.no_deps().value == {"kind": "none"}
    assert code_of(mvm.python_deps, tool="poetry") == "E_INVALID_VALUE"


def test_network_deny_with_allow_https_opens_https_only():
    net = mvm.network(mode="deny", allow_https=["b.example.com", "a.example.com", "b.example.com"]).value
    assert net == {
        "mode": "bridge",
        "ports": [],
        "egress": {"allowlist": [{"host": "a.example.com", "port": 443}, {"host": "b.example.com", "port": 443}]},
        "dns": {"kind": "system"},
    }
    assert mvm.network(mode="deny").value["mode"] == "none"
    assert code_of(mvm.network, mode="none", allow_https=["a.com"]) == "E_KWARG_CONFLICT"
    assert code_of(mvm.network, mode="open") == "E_INVALID_VALUE"


def test_network_bridge_egress_ports_dns():
    net = mvm.network(
        mode="bridge",
        ports=[mvm.port(8080), {"guest": 53, "host": 5353, "proto": "udp"}],
        egress=mvm.egress([mvm.host_port("z.com", 443), mvm.host_port("a.com", 80)]),
        dns=mvm.dns_resolver("10.0.0.1"),
    ).value
    assert net["ports"] == [{"guest": 8080, "host": 0, "proto": "tcp"}, {"guest": 53, "host": 5353, "proto": "udp"}]
    assert net["egress"]["allowlist"] == [{"host": "a.com", "port": 80}, {"host": "z.com", "port": 443}]
    assert net["dns"] == {"kind": "resolver", "host": "10.0.0.1", "port": 53}
    assert mvm.dns_system().value == {"kind": "system"}
    assert mvm.dns_none().value == {"kind": "none"}
    assert code_of(mvm.network, ports=[{"guest": 1, "hots": 2}]) == "E_KWARG_UNKNOWN"
    assert code_of(mvm.port, 0) == "E_INVALID_VALUE"
    assert code_of(mvm.host_port, "a.com", 70000) == "E_INVALID_VALUE"
    assert code_of(mvm.network, dns=mvm.literal("x")) == "E_KWARG_TYPE"


def test_env_values_and_hooks():
    assert mvm.literal("x").value == {"kind": "literal", "value": "x"}
    assert mvm.secret("api-key").value == {"kind": "secret_ref", "name": "api-key", "type": "token", "header": None, "hosts": []}
    assert mvm.secret("k", type="header", header="X-Key", hosts=["a.example"]).value == {
        "kind": "secret_ref", "name": "k", "type": "header", "header": "X-Key", "hosts": ["a.example"],
    }  # fmt: skip
    assert code_of(mvm.secret, "k", type="Bearer") == "E_INVALID_VALUE"
    assert code_of(mvm.secret, "k", type=1) == "E_KWARG_TYPE"
    assert code_of(mvm.secret, "k", hosts="a.example") == "E_KWARG_TYPE"
    assert code_of(mvm.secret, "k", hosts=["a.example", 3]) == "E_KWARG_TYPE"
    assert code_of(mvm.secret, "k", header=["X"]) == "E_KWARG_TYPE"
    # Only name and var may be positional.
    assert code_of(mvm.secret, "k", "K", "bearer") == "E_KWARG_CONFLICT"
    assert code_of(mvm.secret, "k", typ="bearer") == "E_KWARG_UNKNOWN"
    assert mvm.secret("api-key", var="API_KEY").extra == "API_KEY"
    assert mvm.hook("echo hi").value == {"kind": "shell", "line": "echo hi"}
    assert mvm.hook(["uv", "sync"]).value == {"kind": "argv", "argv": ["uv", "sync"]}
    assert code_of(mvm.hook, 3) == "E_KWARG_TYPE"


def test_entrypoint_helpers():
    assert code_of(mvm.entrypoint_function, module="m") == "E_KWARG_TYPE"
    assert mvm.entrypoint(command=["python", "x.py"]).value["kind"] == "command"
    assert code_of(mvm.entrypoint, command="python x.py") == "E_KWARG_TYPE"


def test_addon():
    value = mvm.addon(name="ca", path="addons/ca", before_build="update-ca-certificates").value
    assert value == {
        "name": "ca",
        "source": {"kind": "local", "path": "addons/ca"},
        "hooks": {
            "before_build": [{"kind": "shell", "line": "update-ca-certificates"}],
            "before_start": [], "after_start": [], "before_stop": [],
        },
    }  # fmt: skip


def test_unknown_helper_suggests_the_nearest():
    with pytest.raises(mvm.DeclarationError) as info:
        mvm.pyhton_image  # noqa: B018
    assert info.value.code == "E_HELPER_UNKNOWN"
    assert "mvm.python_image" in info.value.hint
    assert not hasattr(mvm, "no_such_thing_at_all")


def test_positional_and_keyword_clash():
    assert code_of(mvm.secret, "a", name="b") == "E_KWARG_CONFLICT"
    assert code_of(mvm.host_port, "a.com") == "E_KWARG_TYPE"
