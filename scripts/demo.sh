#!/usr/bin/env bash
# The main job end to end: compile → build → up → invoke examples/python/hello-app.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cargo build --release -p mvmctl
mvmctl() { ./target/release/mvmctl "$@"; }

out="$(mktemp -d)/hello-app"
set -x
mvmctl compile examples/python/hello-app/app.py --out "$out"
mvmctl build "$out"
mvmctl up hello-app
trap 'mvmctl down hello-app' EXIT
mvmctl invoke hello-app --input name=ari
