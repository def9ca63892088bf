"""mvm.web_fetch / mvm.web_search against a stand-in for the guest agent's
broker socket: the framing, the call's shape, and refusals raised as the
named exceptions. The host side is tested with real microVMs (crates/mvmctl/tests/secrets_vm.rs)."""

import base64
import json
import os
import socket
import struct
import tempfile
import threading

import pytest

import mvm


class FakeBroker:
    def __init__(self, answer):
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, "broker.sock")
        self.calls = []
        self.answer = answer
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(4)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            c, _ = self.sock.accept()
            n = struct.unpack(">I", c.recv(4, socket.MSG_WAITALL))[0]
            call = json.loads(c.recv(n, socket.MSG_WAITALL))
            self.calls.append(call)
            out = json.dumps(self.answer(call)).encode()
            c.sendall(struct.pack(">I", len(out)) + out)
            c.close()


@pytest.fixture
def broker(monkeypatch):
    def make(answer):
        b = FakeBroker(answer)
        monkeypatch.setenv("MVM_BROKER_SOCKET", b.path)
        return b

    return make


def test_fetch_sends_the_call_and_returns_the_answer(broker):
    b = broker(lambda c: {"outcome": "fetched", "status": 201, "headers": [["content-type", "application/json"]],
                          "body": base64.b64encode(b'{"ok": true}').decode()})
    r = mvm.web_fetch("https://api.example/v1", method="post", headers={"Authorization": "Bearer tok"},
                      json={"q": 1}, timeout=5)
    assert (r.status, r.ok, r.json(), r.header("Content-Type")) == (201, True, {"ok": True}, "application/json")
    call = b.calls[0]
    assert call["call"] == "web_fetch" and call["method"] == "POST" and call["timeout_ms"] == 5000
    assert ["Authorization", "Bearer tok"] in call["headers"] and ["content-type", "application/json"] in call["headers"]
    assert json.loads(base64.b64decode(call["body"])) == {"q": 1}


@pytest.mark.parametrize("code,cls", [("EgressDenied", mvm.EgressDenied), ("SecretNotAllowed", mvm.SecretNotAllowed),
                                      ("Timeout", mvm.Timeout), ("Busy", mvm.Busy)])
def test_refusals_are_the_named_exceptions(broker, code, cls):
    broker(lambda c: {"outcome": "failed", "code": code, "message": "no: " + code})
    with pytest.raises(cls) as e:
        mvm.web_fetch("https://elsewhere.example/")
    assert isinstance(e.value, mvm.WebError) and e.value.code == code and "no: " + code in str(e.value)


def test_timeout_is_also_a_builtin_timeout_error(broker):
    broker(lambda c: {"outcome": "failed", "code": "Timeout", "message": "slow"})
    with pytest.raises(TimeoutError):
        mvm.web_fetch("https://slow.example/")


def test_search_returns_title_url_snippet(broker):
    b = broker(lambda c: {"outcome": "searched", "results": [{"title": "T", "url": "https://r.example/", "snippet": "s"}]})
    assert mvm.web_search("rust microvm", max_results=3) == [{"title": "T", "url": "https://r.example/", "snippet": "s"}]
    assert b.calls[0] == {"call": "web_search", "query": "rust microvm", "max_results": 3}


def test_outside_a_microvm_it_is_unavailable(monkeypatch, tmp_path):
    monkeypatch.setenv("MVM_BROKER_SOCKET", str(tmp_path / "absent.sock"))
    with pytest.raises(mvm.Unavailable):
        mvm.web_fetch("https://api.example/")


def test_body_and_json_together_are_refused():
    with pytest.raises(mvm.BadRequest):
        mvm.web_fetch("https://api.example/", body=b"x", json={})
