/**
 * Replaces kafkajs 2.2.4's producer/groupMessagesPerPartition.js with a linear one.
 *
 * kafkajs groups the messages of a send by partition with
 * `Object.assign(result, { [partition]: [...current, message] })`, copying the
 * partition's array for every message: a send of n records into p partitions costs
 * O(n^2 / p) copies and as much garbage. The sink sends up to tens of thousands of
 * records at once, and this grouping alone took more of the sink thread than the
 * rest of kafkajs (see bench/ANALYSIS.md, "Kafka"). kafkajs is unmaintained since
 * 2023, so the fix is applied here: the module's entry in Node's CommonJS cache is
 * set to a function with the same contract (partition number -> its messages, in
 * the order given, which is what keeps per-partition order) before kafkajs'
 * sendMessages.js requires it.
 *
 * Invariant: this module must be evaluated before kafkajs in every thread that
 * produces: kafka-client.ts and kafka-sink.ts import it before "kafkajs". If
 * kafkajs' producer was loaded first, the patch cannot take effect and
 * installLinearGrouping() says so (returns false; the sink logs it).
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

type Partitioner = (args: { topic: string; partitionMetadata: unknown[]; message: unknown }) => number;

/** Same result as kafkajs' grouping (an object keyed by partition, messages in input order), in O(n). */
export function groupMessagesPerPartition(
  { topic, partitionMetadata, messages, partitioner }:
  { topic: string; partitionMetadata: unknown[]; messages: unknown[]; partitioner: Partitioner },
): Record<number, unknown[]> {
  const result: Record<number, unknown[]> = {};
  if (partitionMetadata.length === 0) return result;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    (result[partition] ??= []).push(message);
  }
  return result;
}

let state: boolean | null = null;

/**
 * Puts the linear grouping in place (idempotent). Returns whether kafkajs' producer
 * uses it: false when kafkajs' sendMessages.js was already loaded with the original.
 */
export function installLinearGrouping(): boolean {
  if (state !== null) return state;
  let groupPath: string;
  let sendPath: string;
  try {
    groupPath = require.resolve("kafkajs/src/producer/groupMessagesPerPartition.js");
    sendPath = require.resolve("kafkajs/src/producer/sendMessages.js");
  } catch {
    return (state = false); // another kafkajs layout: nothing to patch
  }
  if (require.cache[sendPath] !== undefined) {
    // sendMessages.js holds whatever grouping it required; it is ours only if that was already patched.
    return (state = require.cache[groupPath]?.exports === groupMessagesPerPartition);
  }
  require(groupPath); // creates the cache entry, whose exports sendMessages.js will receive
  require.cache[groupPath]!.exports = groupMessagesPerPartition;
  return (state = true);
}

installLinearGrouping();
