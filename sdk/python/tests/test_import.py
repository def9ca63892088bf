import subprocess
import sys


def test_import_has_no_side_effects_and_loads_nothing_heavy():
    # The guest's function runner imports user modules that import mvm, so
    # importing must only define things: no output, no files, no threads,
    # and no heavy standard modules (json, typing, re, functools, subprocess).
    code = (
        "import sys, threading; before = set(sys.modules); import mvm; "
        "new = set(sys.modules) - before; "
        "heavy = sorted(new & {'json', 'typing', 'inspect', 'subprocess', 'asyncio', 'dataclasses', 're', 'functools', 'base64'}); "
        "print(heavy, threading.active_count())"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[] 1"
    assert proc.stderr == ""
