#!/usr/bin/env bash
# The whole test suite: installs the Debian peers the tests compare against (when missing),
# builds, and runs every test with node's built-in runner.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
npx tsc -p tsconfig.json
# Only *.test.js files: support modules next to them are not tests.
mapfile -t tests < <(find dist/test -name '*.test.js' | sort)
node --test --test-concurrency=2 "${tests[@]}"
