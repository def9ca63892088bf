#!/usr/bin/env bash
# Run every test of the project. Installs what the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

# VM tests boot real microVMs under QEMU; they share downloaded inputs
# (kernel package, base root filesystems) through this cache.
export MVM_CACHE_DIR="${MVM_CACHE_DIR:-$HOME/.cache/mvm}"

echo "== Python SDK (sdk/python)"
venv="${MVM_TEST_VENV:-target/sdk-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check ./sdk/python pytest
"$venv/bin/python" -m pytest -q -p no:cacheprovider sdk/python/tests

echo "== TypeScript SDK (sdk/typescript)"
(cd sdk/typescript && npm ci --no-audit --no-fund --loglevel=error && npm test)
# dist/ is committed (the guest initramfs embeds it, so building mvm needs
# no Node); the build above must not have changed it.
if git rev-parse --git-dir >/dev/null 2>&1 &&
    [ -n "$(git status --porcelain -- sdk/typescript/dist)" ]; then
    git status --short -- sdk/typescript/dist
    echo "sdk/typescript/dist is stale: run 'npm run build' in sdk/typescript and commit dist/" >&2
    exit 1
fi

echo "== Rust workspace"
# Formatting drift fails early (rustfmt ships with rustup's default profile).
if cargo fmt --version >/dev/null 2>&1; then
    cargo fmt --all --check
else
    echo "rustfmt is not installed: formatting not checked (rustup component add rustfmt)" >&2
fi
cargo build --workspace --all-targets
cargo test --workspace
