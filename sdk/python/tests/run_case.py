"""Run one declaration file in-process and print its IR, as a user would with
``python app.py`` + ``mvm.emit_json()``. Used by test_parity.py in a fresh
interpreter per case. A rejection prints ``{"code": ...}`` on stderr, exit 3.
"""

import io
import json
import os
import runpy
import sys

import mvm


def main() -> int:
    path = os.path.abspath(sys.argv[1])
    sys.path[0] = os.path.dirname(path)
    try:
        # Not "__main__": a case's `if __name__ == "__main__":` block is user
        # code that the static compiler never runs either.
        # A case may call mvm.emit_json() itself (the static compiler ignores
        # that call); its output is the answer then, else emit it here.
        real_stdout, sys.stdout = sys.stdout, io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        try:
            runpy.run_path(path, run_name="__mvm_case__")
            sys.stdout.flush()
            own = sys.stdout.buffer.getvalue()  # type: ignore[attr-defined]
        finally:
            sys.stdout = real_stdout
        if own:
            sys.stdout.buffer.write(own)
        else:
            mvm.emit_json()
    except mvm.DeclarationError as e:
        sys.stderr.write(json.dumps({"code": e.code, "message": e.message}))
        return 3
    except SyntaxError as e:
        sys.stderr.write(json.dumps({"code": "E_SYNTAX", "message": str(e)}))
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
