#!/usr/bin/env bash
# Installs the browser tests' JavaScript tools from package-lock.json (axe-core, pinned) into
# node_modules/ (git-ignored; nothing there is served). Idempotent: skips when the locked
# version is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
locked=$(python3 -c 'import json; print(json.load(open("package-lock.json"))["packages"]["node_modules/axe-core"]["version"])')
installed=$(python3 -c 'import json; print(json.load(open("node_modules/axe-core/package.json"))["version"])' 2>/dev/null || true)
if [ -f node_modules/axe-core/axe.min.js ] && [ "$locked" = "$installed" ]; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
