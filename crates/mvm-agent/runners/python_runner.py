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

Control lines carry no "id" and are answered in order like calls:

  {"env": {"NAME": "value", ...}}  ->  {"env_ok": true}
      Replaces os.environ. Sent only while no call has run (the runner was
      started ahead of time, e.g. before a template snapshot), so no user
      module has seen the old environment.
  {"reseed": true}  ->  {"reseed_ok": true}
      Sent after a snapshot restore, once the kernel's generator was
      reseeded: reseeds the random module, whose state the snapshot cloned.
  {"preload": {"modules": ["mvm"], "working_dirs": ["/app"]}}
      ->  {"preload_ok": true}
      Sent by prewarm: imports the SDK mvm ships, when that is the module
      the app's own import would find (nothing of the app's is imported).

A failed control line is answered {"<key>": false, "error": "..."}; the agent
then replaces the runner.
"""

import os
import sys

REQUESTS_FD = 3
ANSWERS_FD = 4

try:
    import importlib
    import json
    import platform
    import time
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
        try:
            # Every call: user code may have moved elsewhere.
            os.chdir(working_dir)
        except OSError:
            pass
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
    # Sent as encoded here, not decoded and encoded again.
    return Encoded(encoded)


class Encoded:
    """A function's value, already JSON."""

    __slots__ = ("json",)

    def __init__(self, text):
        self.json = text


def set_environment(env):
    os.environ.clear()
    os.environ.update(env)
    # The time module, and the C library behind localtime_r, read TZ once;
    # a runner started with this env would have read the new one.
    time.tzset()


# The SDK directory the agent ships (`--sdk`), once main() has read it.
SHIPPED_SDK = None


def preload(request):
    """Imports the modules mvm itself ships (the `mvm` SDK: platform code,
    not the user's) before any user code runs, so a template snapshot
    holds them imported. Only when that is what the user's own import
    would find: not if the app brings a module of that name, in its
    working directory or installed in the image."""
    shadowing = request.get("working_dirs") or []
    for name in request.get("modules") or []:
        if name in sys.modules or not SHIPPED_SDK:
            continue
        if any(
            os.path.exists(os.path.join(d, name + ".py")) or os.path.isdir(os.path.join(d, name))
            for d in shadowing
        ):
            continue
        import importlib.util

        spec = importlib.util.find_spec(name)
        origin = os.path.realpath(spec.origin) if spec is not None and spec.origin else ""
        if not origin.startswith(os.path.realpath(SHIPPED_SDK) + os.sep):
            continue
        importlib.import_module(name)


def reseed():
    # Seeding without an argument draws from os.urandom, i.e. the kernel,
    # which the agent reseeded first. Only an imported module has state to
    # refresh; one imported later seeds itself then.
    module = sys.modules.get("random")
    if module is not None:
        module.seed()


# Control line key -> (what it does, the key of its answer).
CONTROLS = {
    "env": (set_environment, "env_ok"),
    "reseed": (lambda _: reseed(), "reseed_ok"),
    "preload": (preload, "preload_ok"),
}


def control(request):
    """The answer to a control line, or None if `request` is a call."""
    if "id" in request:
        return None
    for key, (apply, answer_key) in CONTROLS.items():
        if key in request:
            try:
                apply(request[key])
            except Exception as exc:  # noqa: BLE001 - reported to the agent, which replaces the runner
                return {answer_key: False, "error": f"{type(exc).__name__}: {exc}"}
            return {answer_key: True}
    return None


def main():
    global SHIPPED_SDK
    sdk = None
    if len(sys.argv) == 3 and sys.argv[1] == "--sdk":
        sdk = sys.argv[2]
    if sdk and os.path.isdir(sdk) and sdk not in sys.path:
        # Last, so an `mvm` the app installed itself takes precedence.
        sys.path.append(sdk)
        SHIPPED_SDK = sdk

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
        if not isinstance(request, dict):
            send({"id": 0, **error("InvalidRequest", "a request must be a JSON object")})
            continue
        answer = control(request)
        if answer is not None:
            send(answer)
            continue
        answer = handle(request)
        call_id = request.get("id", 0)
        if isinstance(answer, Encoded):
            answers.write('{"id": %s, "ok": true, "value": %s}\n' % (json.dumps(call_id), answer.json))
            answers.flush()
            continue
        answer["id"] = call_id
        send(answer)


if __name__ == "__main__":
    main()
