"""Host and path classification, with the vectors of mvm_ir's own tests."""

import pytest

from mvm.validate import header_problem, host_problem, source_escape

WILDCARDS = ["*", "*.example.com", "api.*", "0.0.0.0", "::", "[::]", "0:0:0:0:0:0:0:0", "0.0.0.0/0", "::/0", "10.0.0.0/8"]
HOSTS = ["example.com", "pypi.org.", "10.0.0.1", "::1", "[2001:db8::1]", "_dmarc.example.com", "localhost", "1.2.3"]
INVALID = ["", ".", "a..b", "-a.com", "a-.com", "exa mple.com", "https://example.com", "a" * 64, "a:b", "fe80::1%eth0"]


@pytest.mark.parametrize("host", WILDCARDS)
def test_wildcards(host):
    assert host_problem(host)[0] == "wildcard"


@pytest.mark.parametrize("host", HOSTS)
def test_hosts(host):
    assert host_problem(host) is None


@pytest.mark.parametrize("host", INVALID)
def test_invalid_hosts(host):
    assert host_problem(host)[0] == "invalid"


def test_source_paths():
    for ok in ["", ".", "src", "./app", "a/b.c/d", "..foo", "foo.."]:
        assert source_escape(ok) is None, ok
    for bad in ["/", "/home/me", "~", "~/code", "..", "../x", "a/../b", "a/..", "C:\\x", "a\\..\\b", "\\\\srv\\x"]:
        assert source_escape(bad) is not None, bad


def test_header_names():
    # The vectors of mvm_ir's validate/secrets.rs.
    for ok in ["X-Api-Key", "x_token", "Authorization", "a!#$%&'*+-.^_`|~9"]:
        assert header_problem(ok) is None, ok
    for bad in ["", "X Api", "X-Api:", "Ключ", "a\r\nb", '"q"']:
        assert header_problem(bad) is not None, bad
    for owned in ["Host", "CONTENT-LENGTH", "te", "Proxy-Authorization"]:
        assert header_problem(owned) == "is a header the host sets itself on every request", owned
