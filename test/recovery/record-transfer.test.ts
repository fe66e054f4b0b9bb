/**
 * A worker hands its checkpoint records to the main thread by transferring their
 * ArrayBuffer (src/runtime/worker.ts): RecordWriter.finish() must give bytes that own
 * a transferable ArrayBuffer, also for a few small records (Buffer's shared pool
 * is untransferable: Node 24 throws DataCloneError, and the checkpoint failed).
 */
import { expect, it } from "vitest";
import { MessageChannel } from "node:worker_threads";
import { decodeRecords, RecordWriter } from "../../dist/recovery/store.js";

it("the records of a small checkpoint can be transferred to another thread, and decode there", async () => {
  const w = new RecordWriter();
  w.add("counts", "s", "a", Uint8Array.of(1, 2, 3));
  w.add("counts", "s", "b", Uint8Array.of(4));
  const records = w.finish();
  expect(records.bytes.byteLength).toBeLessThan(4096); // where Buffer.concat takes the pool
  expect(records.bytes.byteOffset).toBe(0);
  expect(records.bytes.buffer.byteLength).toBe(records.bytes.byteLength);
  const { port1, port2 } = new MessageChannel();
  try {
    const got = new Promise<Uint8Array>((resolve) => port2.once("message", resolve));
    port1.postMessage(records.bytes, [records.bytes.buffer]);
    const bytes = await got;
    expect(decodeRecords(bytes, "transferred").map((e) => [e.key, [...e.value]])).toEqual([
      ["a", [1, 2, 3]],
      ["b", [4]],
    ]);
  } finally {
    port1.close();
  }
});
