#!/usr/bin/env bash
# Installs what the test suite needs from Debian when it is missing: PostgreSQL's server
# binaries (initdb, pg_ctl), Chromium and npm. Uses sudo when not root. Idempotent.
set -euo pipefail

need=()
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
if [ ! -x /usr/bin/chromium ]; then
  need+=(chromium)
fi
# npm installs axe-core (package.json) for the accessibility checks of the browser tests.
if ! command -v npm >/dev/null 2>&1; then
  need+=(npm)
fi
# Pages render with DejaVu when no other font is present.
if [ ! -d /usr/share/fonts/truetype/dejavu ]; then
  need+=(fonts-dejavu-core)
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "installing from Debian: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
