// Debug preload for memory breakdowns (bench only, never loaded by the engine itself):
//   WR_HEAP_STATS_DIR=/tmp/hs node --import ./bench/tools/heap-stats.mjs bin/wallaroo.js run ...
// Workers inherit the process's execArgv, so this runs in the main thread and in every worker
// and I/O thread. Each thread samples v8.getHeapSpaceStatistics() every 100 ms and keeps the
// sample with the most physical heap; it rewrites <dir>/<pid>-<threadId>.json every 500 ms with
// that peak, the latest sample, the peak of external memory and the count of GCs by kind and their total pause (ms) (a thread that is terminated keeps its last file).
import { writeFileSync } from "node:fs";
import v8 from "node:v8";
import { PerformanceObserver } from "node:perf_hooks";
import { isMainThread, threadId, workerData } from "node:worker_threads";

const dir = process.env.WR_HEAP_STATS_DIR;
if (dir) {
  const sample = () => {
    const spaces = {};
    let physical = 0;
    for (const s of v8.getHeapSpaceStatistics()) {
      spaces[s.space_name] = { size: s.space_size, physical: s.physical_space_size, used: s.space_used_size };
      physical += s.physical_space_size;
    }
    const h = v8.getHeapStatistics();
    return {
      at: Date.now(),
      physical,
      totalHeap: h.total_heap_size,
      malloced: h.malloced_memory,
      peakMalloced: h.peak_malloced_memory,
      external: h.external_memory ?? process.memoryUsage().external,
      arrayBuffers: process.memoryUsage().arrayBuffers,
      spaces,
    };
  };
  // garbage collections of this thread by kind (1 minor, 2 major, 4 incremental, 8 weak callbacks)
  const gcs = {};
  let gcMs = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcs[e.detail?.kind ?? e.kind] = (gcs[e.detail?.kind ?? e.kind] ?? 0) + 1;
      gcMs += e.duration;
    }
  }).observe({ entryTypes: ["gc"] });
  let peakExternal = 0;
  let peak = sample();
  let latest = peak;
  let ticks = 0;
  const role = isMainThread ? "main" : `${process.argv[1]?.split("/").pop()} ${workerData?.kind ?? ""}`;
  const timer = setInterval(() => {
    latest = sample();
    if (latest.physical > peak.physical) peak = latest;
    peakExternal = Math.max(peakExternal, latest.external);
    if (++ticks % 5 === 0) {
      try {
        writeFileSync(
          `${dir}/${process.pid}-${threadId}.json`,
          JSON.stringify({ threadId, role, peak, latest, peakExternal, gcs, gcMs }),
        );
      } catch {
        /* the directory went away: a debug aid, nothing to report */
      }
    }
  }, 100);
  timer.unref();
}
