"""mvm Python function runner.

Started once by the guest agent and kept warm. Reads one JSON request per
line on fd 3, answers one JSON line per request on fd 4:

  request: {"id": 1, "module": "app", "function": "greet",
            "working_dir": "/app", "args": {"name": "ari"}}
  answer:  {"id": 1, "ok": true, "value": ...}
        or {"id": 1, "ok": false,
            "error": {"kind": ..., "message": ..., "traceback": ...}}

The first line written is {"ready": true, ...}. stdout and stderr belong to
the instance log, so the function's prints never reach the channel.
"""

import os
import sys

REQUESTS_FD = 3
ANSWERS_FD = 4

try:
    import importlib
    import json
    import platform
    import traceback
except ImportError as missing:
    # A minimal interpreter (Debian's python3-minimal has no json) cannot
    # run functions; say so on the channel, without json.
    reason = f"the image's Python lacks a standard module ({missing}); install the full python3 package"
    reason = reason.replace("\\", "/").replace('"', "'")
    os.write(ANSWERS_FD, ('{"ready": false, "error": "' + reason + '"}\n').encode())
    sys.exit(1)


def error(kind, message, tb=None):
    return {"ok": False, "error": {"kind": kind, "message": message, "traceback": tb}}


def exception_error(exc):
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return error(type(exc).__name__, str(exc), tb)


def resolve(module_name, function_name, working_dir):
    if working_dir and working_dir not in sys.path:
        # The app's own modules win over anything else of the same name.
        sys.path.insert(0, working_dir)
    module = importlib.import_module(module_name)
    function = getattr(module, function_name, None)
    if function is None:
        return None, error(
            "FunctionNotFound",
            f"module {module_name!r} has no function {function_name!r}",
        )
    return function, None


def handle(request):
    working_dir = request.get("working_dir") or "/app"
    try:
        if os.path.isdir(working_dir):
            os.chdir(working_dir)
        function, failure = resolve(request["module"], request["function"], working_dir)
        if failure:
            return failure
        value = function(**(request.get("args") or {}))
    except BaseException as exc:  # noqa: BLE001 - user code may raise anything, SystemExit included
        return exception_error(exc)
    try:
        # allow_nan=False: NaN and Infinity are not JSON.
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return error(
            "ResultNotSerializable",
            f"{request['function']} returned a {type(value).__name__}, which is not JSON: {exc}",
        )
    return {"ok": True, "value": json.loads(encoded)}


def main():
    sdk = None
    if len(sys.argv) == 3 and sys.argv[1] == "--sdk":
        sdk = sys.argv[2]
    if sdk and os.path.isdir(sdk) and sdk not in sys.path:
        # Last, so an `mvm` the app installed itself takes precedence.
        sys.path.append(sdk)

    requests = os.fdopen(REQUESTS_FD, "r", encoding="utf-8")
    answers = os.fdopen(ANSWERS_FD, "w", encoding="utf-8")

    def send(message):
        answers.write(json.dumps(message, allow_nan=False) + "\n")
        answers.flush()

    runtime = f"{platform.python_implementation()} {platform.python_version()}"
    send({"ready": True, "runtime": runtime})
    for line in requests:
        try:
            request = json.loads(line)
        except ValueError as exc:
            send({"id": 0, **error("InvalidRequest", f"not a JSON request: {exc}")})
            continue
        answer = handle(request)
        answer["id"] = request.get("id", 0)
        send(answer)


if __name__ == "__main__":
    main()
