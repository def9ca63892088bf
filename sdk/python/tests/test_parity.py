"""Parity with the static compiler: every Python case of the conformance
corpus, run in-process through the SDK, must give the same canonical bytes
(expected.json) or the same error code (expected_error.json).

The corpus lives in <repo>/conformance/cases (override: MVM_CONFORMANCE_DIR)
and grows over time; whatever cases exist are run.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CASES = Path(os.environ.get("MVM_CONFORMANCE_DIR", HERE.parents[2] / "conformance" / "cases"))

# Codes only a static reader can give: in-process, Python has already
# evaluated names and expressions before mvm sees the values, and the
# lockfile check belongs to the compile output, not to the declaration.
STATIC_ONLY = {"E_NOT_LITERAL", "E_LOCKFILE_MISSING"}

# Cases where the SDK deliberately differs from the corpus, with the reason.
# strict: the test fails once they agree, so the entry gets removed.
KNOWN_DIFFERENCES: dict = {}


def _static_only(case: Path, decl: Path, expected: dict) -> bool:
    if expected["code"] in STATIC_ONLY:
        return True
    if expected["code"] == "E_HELPER_UNKNOWN":
        # A call outside the mvm namespace (os.getenv(...)) has already run by
        # the time mvm sees its result; only a misspelt mvm.<name> is visible.
        line = decl.read_text().splitlines()[expected["line"] - 1]
        return not line[expected["column"] - 1 :].startswith("mvm.")
    return False


def _declaration(case: Path) -> Path:
    # declaration.txt names the declaration file when it is not app.py/app.ts
    # (e.g. src/tool.py, to test default module names).
    named = case / "declaration.txt"
    if named.is_file():
        return case / named.read_text().strip()
    return case / "app.py"


def _cases():
    if not CASES.is_dir():
        return []
    return sorted(d for d in CASES.iterdir() if _declaration(d).suffix == ".py" and _declaration(d).is_file())


@pytest.mark.parametrize("case", _cases(), ids=lambda d: d.name)
def test_case(case: Path, request: pytest.FixtureRequest) -> None:
    error_file, ir_file = case / "expected_error.json", case / "expected.json"
    assert error_file.is_file() or ir_file.is_file(), "a Python case needs expected.json or expected_error.json"
    if case.name in KNOWN_DIFFERENCES:
        request.node.add_marker(pytest.mark.xfail(reason=KNOWN_DIFFERENCES[case.name], strict=True))
    proc = subprocess.run(
        [sys.executable, str(HERE / "run_case.py"), str(_declaration(case))],
        cwd=case,
        capture_output=True,
    )
    if error_file.is_file():
        expected = json.loads(error_file.read_text())
        if _static_only(case, _declaration(case), expected):
            pytest.xfail("%s here is detected only by the static compiler" % expected["code"])
        assert proc.returncode == 3, "expected %s, SDK accepted it: %s" % (expected["code"], proc.stdout.decode())
        got = json.loads(proc.stderr.decode().strip().splitlines()[-1])
        assert got["code"] == expected["code"], got["message"]
    else:
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stdout.decode() == ir_file.read_bytes().decode()


def test_corpus_present() -> None:
    # An empty or missing corpus must fail, not pass with nothing compared.
    assert len(_cases()) >= 20, "expected the conformance corpus under %s" % CASES
