"""How long `import mvm` and `emit_json` take (target: import <= 50 ms).

Every sample is a fresh interpreter, as a user's `python app.py` is:
- import, in-process: perf_counter around `import mvm`;
- import, whole process: `python -c "import mvm"` minus `python -c pass`;
- each seed example of the conformance corpus: loading the declaration
  module (which imports mvm and declares the app) plus `emit_json()`.

Run: python sdk/python/benchmarks/bench_sdk.py [samples]
"""

import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CASES = os.path.join(ROOT, "conformance", "cases")

IN_PROCESS_IMPORT = "import time; t = time.perf_counter(); import mvm; print((time.perf_counter() - t) * 1e3)"

# Loads a declaration the way `python app.py` does and times it with emit_json.
DECLARE_AND_EMIT = """
import io, runpy, sys, time
path = sys.argv[1]
sys.path[0] = __import__("os").path.dirname(path)
t = time.perf_counter()
import mvm
real, sys.stdout = sys.stdout, io.StringIO()
runpy.run_path(path, run_name="__mvm_case__")
sys.stdout = io.StringIO()
mvm.emit_json()
sys.stdout = real
print((time.perf_counter() - t) * 1e3)
"""


def python_ms(args):
    out = subprocess.run([sys.executable, *args], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def wall_ms(code):
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return (time.perf_counter() - t) * 1e3


def summary(samples):
    samples = sorted(samples)
    p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
    return f"median {statistics.median(samples):7.2f} ms  p90 {p90:7.2f} ms  (n={len(samples)})"


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    print(f"python {sys.version.split()[0]}")
    print("import mvm, in-process      ", summary([python_ms(["-c", IN_PROCESS_IMPORT]) for _ in range(n)]))
    base = [wall_ms("pass") for _ in range(n)]
    full = [wall_ms("import mvm") for _ in range(n)]
    print("python -c pass              ", summary(base))
    print("python -c 'import mvm'      ", summary(full))
    seeds = sorted(c for c in os.listdir(CASES) if c.startswith("seed") and os.path.exists(os.path.join(CASES, c, "app.py")))
    for case in seeds:
        path = os.path.join(CASES, case, "app.py")
        samples = [python_ms(["-c", DECLARE_AND_EMIT, path]) for _ in range(n)]
        print(f"{case:28}", summary(samples))


if __name__ == "__main__":
    main()
