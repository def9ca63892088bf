"""after_start: the readiness probe, polled until it exits 0."""

import sys
import urllib.request

try:
    with urllib.request.urlopen("http://127.0.0.1:8080/health", timeout=2) as r:
        sys.exit(0 if r.read().startswith(b"ok migrated") else 1)
except OSError:
    sys.exit(1)
