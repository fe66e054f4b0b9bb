#!/usr/bin/env bash
# Runs the scaling mode on a machine without Node, from what bench/device/pack.sh packed
# (carried as .device/ and dist/). Writes scale.json, BENCHMARKS.md and the log to $OUT (or
# bench/results/device/ when OUT is unset).
#   bash bench/device/scale.sh 1,2,4,8,12,16 [--scenario word_count,alphabet] [--quick]
set -euo pipefail
cd "$(dirname "$0")/../.."
counts="${1:-1,2,4,8}"
shift || true
out="${OUT:-bench/results/device}"
mkdir -p "$out" /tmp/wallaroo-node/bin
# unpacked every time: a binary left there by an earlier pack may be another Node version
xz -dc .device/node.xz > /tmp/wallaroo-node/bin/node
chmod +x /tmp/wallaroo-node/bin/node
export PATH="/tmp/wallaroo-node/bin:$PATH"
[ -e node_modules ] || ln -s .device/node_modules node_modules
echo "scale: node $(node --version), $(nproc) cores" | tee "$out/scale.log"
node bench/run.js --scale "$counts" "$@" 2>&1 | tee -a "$out/scale.log"
quick=""; for a in "$@"; do [ "$a" = "--quick" ] && quick=quick/; done
cp "bench/results/${quick}scale.json" "$out/"
[ -n "$quick" ] || cp BENCHMARKS.md bench/results/scaling.svg "$out/" 2>/dev/null || true
