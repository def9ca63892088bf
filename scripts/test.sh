#!/usr/bin/env bash
# Run every test of the project. Installs what the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

# VM tests boot real microVMs under QEMU; they share downloaded inputs
# (kernel package, base root filesystems) through this cache.
export MVM_CACHE_DIR="${MVM_CACHE_DIR:-$HOME/.cache/mvm}"

cargo build --workspace --all-targets
cargo test --workspace
