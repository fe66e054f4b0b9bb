/**
 * The restart half of the Kafka sink's two-phase commit (sink.ts): committing a
 * transaction that the last checkpoint decided to commit, with the producer id and
 * epoch the checkpoint recorded, before a new producer with that transactional id
 * registers (its InitProducerId would abort it).
 *
 * What a Kafka 3.9 broker answers to EndTxn(commit) with a stored id and epoch
 * (test/kafka/txn-window.test.ts checks each against the real broker):
 * - the transaction is open (the engine died before committing it): NONE, committed now;
 * - it was committed already (the engine died after): NONE again (a retried commit);
 * - it was aborted since, by the broker's transaction timeout or by another producer
 *   registering the id (its epoch was bumped): INVALID_PRODUCER_EPOCH. Its records are
 *   gone; nothing can bring them back.
 * - a commit or abort still completing: CONCURRENT_TRANSACTIONS (retried).
 * kafkajs has no API for this: the request goes through its own cluster and broker
 * objects (pinned kafkajs 2.2.4).
 */
import type { Kafka } from "kafkajs";
import type { PendingTransaction } from "../../recovery/store.js";
import { protocolErrorType } from "./client.js";

/** kafkajs' coordinator type of a transaction coordinator (FindCoordinator key_type 1) */
const TRANSACTION_COORDINATOR = 1;
/** EndTxn answers meaning the transaction will never be committed */
const GONE = new Set(["INVALID_PRODUCER_EPOCH", "PRODUCER_FENCED", "INVALID_PRODUCER_ID_MAPPING", "INVALID_TXN_STATE"]);

interface KafkajsBroker {
  endTxn(args: {
    transactionalId: string;
    producerId: string;
    producerEpoch: number;
    transactionResult: boolean;
  }): Promise<unknown>;
}
interface KafkajsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  findGroupCoordinator(args: { groupId: string; coordinatorType: number }): Promise<KafkajsBroker>;
}

/** A kafkajs cluster of the client's brokers (kafkajs keeps its constructor private). */
function createCluster(kafka: Kafka): KafkajsCluster {
  const key = Object.getOwnPropertySymbols(kafka).find((s) => s.description === "private:Kafka:createCluster");
  const make = key === undefined ? undefined : (kafka as unknown as Record<symbol, unknown>)[key];
  if (typeof make !== "function")
    throw new Error("this kafkajs has no private createCluster (wallaroo needs kafkajs 2.2.4 to commit a transaction)");
  return make({ allowAutoTopicCreation: false }) as KafkajsCluster;
}

/**
 * Sends EndTxn(commit) for `t` with its stored producer id and epoch, or abort with
 * `commit` false (tests). Resolves "committed" (now or before), or the broker's answer
 * when the transaction is gone (aborted); throws when the answer is not final
 * (unreachable broker, coordinator moving, a commit still completing): try again.
 */
export async function endStoredTransaction(
  kafka: Kafka,
  t: Pick<PendingTransaction, "transactionalId" | "producerId" | "producerEpoch">,
  commit = true,
): Promise<"committed" | "aborted" | { gone: string }> {
  const cluster = createCluster(kafka);
  await cluster.connect();
  try {
    const broker = await cluster.findGroupCoordinator({
      groupId: t.transactionalId,
      coordinatorType: TRANSACTION_COORDINATOR,
    });
    await broker.endTxn({
      transactionalId: t.transactionalId,
      producerId: t.producerId,
      producerEpoch: t.producerEpoch,
      transactionResult: commit,
    });
    return commit ? "committed" : "aborted";
  } catch (err) {
    const type = protocolErrorType(err);
    if (type !== null && GONE.has(type)) return { gone: type };
    throw err;
  } finally {
    await cluster.disconnect().catch(() => {});
  }
}
