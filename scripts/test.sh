#!/usr/bin/env bash
# The whole test suite: installs the Debian peers the tests compare against (when missing),
# builds, and runs every test with node's built-in runner.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
npx tsc -p tsconfig.json
# Node 20's runner takes directories and finds *.test.js below them.
node --test --test-concurrency=2 dist/test/
