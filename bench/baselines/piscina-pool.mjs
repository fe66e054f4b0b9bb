// What a user builds with piscina: the main thread cuts the sockets' bytes into batches of whole
// frames and hands each batch to the pool; results are applied in arrival order per source (a
// FIFO of promises), so stateful steps run on the main thread. Too many batches in flight pause
// the sources.
import { Piscina } from "piscina";
import { parseCli, Gate, connectSink, listenFrames, ready } from "./common.mjs";

/**
 * Runs a piscina baseline: `handlers[i]` = { task, apply(result, sink) } for source i.
 */
export async function runPool(handlers) {
  const cli = parseCli();
  const pool = new Piscina({
    filename: new URL("./piscina-worker.mjs", import.meta.url).href,
    minThreads: cli.threads,
    maxThreads: cli.threads,
  });
  const gate = new Gate();
  const maxInFlight = cli.threads * 4;
  let inFlight = 0;
  const sink = await connectSink(cli.out, gate);
  await Promise.all(
    handlers.map((h, i) => {
      let tail = Promise.resolve();
      return listenFrames(cli.in[i], gate, (buf, end) => {
        const ab = new ArrayBuffer(end);
        new Uint8Array(ab).set(buf.subarray(0, end));
        inFlight++;
        gate.set("pool", inFlight >= maxInFlight);
        const task = pool.run(ab, { name: h.task, transferList: [ab] });
        tail = Promise.all([task, tail]).then(
          ([r]) => {
            h.apply(r, sink);
            inFlight--;
            gate.set("pool", inFlight >= maxInFlight);
          },
          (e) => {
            console.error(e);
            process.exit(1);
          },
        );
      });
    }),
  );
  ready();
}
