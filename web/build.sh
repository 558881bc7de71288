#!/bin/sh
# Rebuild web/dist from web/src with the versions pinned in package-lock.json.
#   web/build.sh            npm ci, then esbuild (minified); writes dist/
#   web/build.sh --no-ci    reuse the node_modules already there
# The output is deterministic: the same sources and lock give the same bytes.
set -eu
cd "$(dirname "$0")"
if [ "${1:-}" != "--no-ci" ] || [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
esbuild=node_modules/.bin/esbuild
mkdir -p dist
rm -f dist/app.js dist/preview.js dist/app.css dist/page.html dist/early.js
# app.js and preview.js (the preview's libraries, loaded by the note page after
# the editor): build.mjs, with esbuild's API for a plugin (see there).
node build.mjs
"$esbuild" src/app.css --bundle --minify --log-level=warning --legal-comments=eof --charset=ascii --outfile=dist/app.css
cp src/page.html src/early.js dist/
for f in dist/page.html dist/early.js dist/app.js dist/preview.js dist/app.css; do
  printf '%8d  %8d gz  %s\n' "$(wc -c <"$f")" "$(gzip -9n <"$f" | wc -c)" "$f"
done
