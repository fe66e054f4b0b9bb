#!/usr/bin/env bash
# Prints the bin/ directory of a Node 24 (or newer): the machine's own node when it is new
# enough, else the official binary from the npm registry (package node-linux-<arch>@24),
# unpacked once into .node24/ (git-ignored). Used by .ci/run and bench/device/pack.sh.
#   PATH="$(bash .ci/node24.sh):$PATH"
set -euo pipefail
cd "$(dirname "$0")/.."
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -ge 24 ]; then
  dirname "$(command -v node)"
  exit 0
fi
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "node24: no node-linux-$(uname -m) package; install Node 24 yourself" >&2; exit 1 ;;
esac
if [ ! -x .node24/bin/node ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # npm pack fetches the package's tarball without installing it (its install script is not run)
  npm pack --silent --pack-destination "$tmp" "node-linux-$arch@24" >/dev/null
  rm -rf .node24 && mkdir -p .node24
  tar xzf "$tmp"/node-linux-"$arch"-*.tgz -C .node24 --strip-components=1
fi
echo "$PWD/.node24/bin"
