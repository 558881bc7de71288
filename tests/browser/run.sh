#!/bin/sh
# The browser tests of the page of `notes serve` (puppeteer-core + Debian's Chromium).
#   tests/browser/run.sh [TEST...]   TEST: protocol reconcile concurrent samespot conflicts presence reload hostile csp
# Exit 0 when every check passes, 1 when one fails, 77 (ctest's SKIP) when Chromium,
# Node 18+ or the npm packages are missing. Against two real daemons: set NOTES_URL_A,
# NOTES_URL_B (and NOTES_TEXT_A/B), see run.mjs; otherwise two mock daemons run.
# DURATION=10 shortens the concurrent typing (default 30 s).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
web=$(cd "$here/../../web" && pwd)
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
skip() { echo "SKIP: $*"; exit 77; }
[ -x "$CHROMIUM" ] || skip "no Chromium at $CHROMIUM (apt-get install -y chromium, or set CHROMIUM)"
command -v node >/dev/null 2>&1 || skip "no node (apt-get install -y nodejs npm)"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)' || skip "node $(node --version) is older than 18"
deps() { # $1: folder with package-lock.json; $2: a module that must resolve there
  [ -d "$1/node_modules/$2" ] && return 0
  command -v npm >/dev/null 2>&1 || skip "no npm to install $1/node_modules"
  (cd "$1" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) || skip "npm ci failed in $1 (offline?)"
}
deps "$here" puppeteer-core
deps "$web" @codemirror/state # reconcile.mjs imports web/src; the mocks need ws too
[ -f "$web/dist/app.js" ] || { echo "web/dist/app.js is missing: run web/build.sh"; exit 1; }
cd "$here"
exec node run.mjs "$@"
