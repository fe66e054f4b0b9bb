/**
 * What the broker answers to the restart's EndTxn(commit) with a stored producer id
 * and epoch (src/connectors/kafka/transactions.ts), case by case, against the real
 * broker: the answers the sink's two-phase commit relies on. (A transaction aborted
 * by the broker's transaction timeout answers as a fenced one, INVALID_PRODUCER_EPOCH:
 * checked by hand with a 2 s transactionTimeout; not here, since the broker's abort
 * check runs every 10 s.)
 */
// First: kafkajs' producer must load after the patches (transactionIdentity), as in the sink's thread.
import { transactionIdentity, installKafkajsPatches } from "../../dist/connectors/kafka/kafkajs-patches.js";
import { endStoredTransaction } from "../../dist/connectors/kafka/transactions.js";
import { describe, expect, inject, it } from "vitest";
import type { Kafka, Producer } from "kafkajs";
import { freshTopics, uniqueName } from "./helpers.js";

const brokers = inject("kafkaBrokers") ?? "";
const skipReason = inject("kafkaSkipReason") ?? "test/kafka/globalSetup.ts is not a vitest globalSetup";

describe("EndTxn with a stored transaction identity", () => {
  it("commits an open transaction, answers a repeated commit with success, and a fenced one with INVALID_PRODUCER_EPOCH", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);
    expect(installKafkajsPatches().transactions).toBe(true);
    const { kafka, admin, inTopic: topic, outTopic } = await freshTopics(brokers, 1);
    const tid = uniqueName("txn");
    const producers: Producer[] = [];
    const open = async (k: Kafka) => {
      const p = k.producer({ transactionalId: tid, idempotent: true, maxInFlightRequests: 1 });
      producers.push(p);
      await p.connect();
      return p;
    };
    /** a transaction with one record, left open; its identity */
    const begin = async (p: Producer, value: string) => {
      const t = await p.transaction();
      await t.send({ topic, messages: [{ value }] });
      return { transactionalId: tid, ...transactionIdentity(tid)! };
    };
    /** the committed records, as a read_committed consumer sees them */
    const committed = async () => {
      const offsets = await admin.fetchTopicOffsets(topic); // the last stable offset for read_committed
      return Number(offsets[0].high);
    };
    try {
      let p = await open(kafka);
      const a = await begin(p, "a");
      expect(a.producerId).toMatch(/^[0-9]+$/);
      expect(await endStoredTransaction(kafka, a)).toBe("committed");
      expect(await endStoredTransaction(kafka, a)).toBe("committed"); // committed already: success again
      await p.disconnect();

      // A producer's next transaction has the identity of its last one: the stored identity of a committed
      // transaction (w) commits the next one (x) if it is open. Hence the sink's two producers taking turns.
      p = await open(kafka);
      const t = await p.transaction();
      await t.send({ topic, messages: [{ value: "w" }] });
      await t.commit();
      const w = { transactionalId: tid, ...transactionIdentity(tid)! };
      const x = await begin(p, "x");
      expect(x).toEqual(w);
      const before = await committed(); // the open x holds the read_committed end back
      expect(await endStoredTransaction(kafka, w)).toBe("committed");
      // x is committed: the end moves once the broker has written its commit markers (after EndTxn answers).
      let after = await committed();
      for (const deadline = Date.now() + 30_000; after === before && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 100));
        after = await committed();
      }
      expect(after).toBeGreaterThan(before);
      await p.disconnect();

      // Registering the id again (a new producer) bumps the epoch: the old identity is fenced, whether its
      // transaction was committed (x) or still open (y, aborted by the registration).
      p = await open(kafka);
      const y = await begin(p, "y");
      await p.disconnect();
      p = await open(kafka);
      await (await p.transaction()).abort();
      expect(await endStoredTransaction(kafka, x)).toEqual({ gone: "INVALID_PRODUCER_EPOCH" });
      expect(await endStoredTransaction(kafka, y)).toEqual({ gone: "INVALID_PRODUCER_EPOCH" });
      expect(
        await endStoredTransaction(kafka, { transactionalId: tid, producerId: "987654321", producerEpoch: 0 }),
      ).toEqual({
        gone: "INVALID_PRODUCER_ID_MAPPING",
      });
    } finally {
      for (const p of producers) await p.disconnect().catch(() => {});
      await admin.deleteTopics({ topics: [topic, outTopic] }).catch(() => {});
      await admin.disconnect();
    }
  }, 60_000);
});
