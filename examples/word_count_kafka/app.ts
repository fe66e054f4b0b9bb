/**
 * Word Count over Kafka: reads lines of text from a Kafka topic, splits them into
 * words and keeps a running count per word; for every word occurrence it writes
 * "word => count" to a Kafka topic, keyed by the word, so all the counts of a
 * word land in one partition, in order. The splitting and the state are those
 * of examples/word_count (partitioned by first letter); only the connectors differ.
 */
import * as wallaroo from "wallaroo";
import { WORD_PARTITIONS, WordCount, WordTotals, partitionKey, splitWords } from "../word_count/app.js";

// Classes whose instances cross worker threads are exported by the application module.
export { WordCount, WordTotals };

export function applicationSetup(args: string[]) {
  const [inTopic, inBrokers, inLogLevel] = wallaroo.kafkaParseSourceOptions(args);
  const [outTopic, outBrokers, outLogLevel, maxProduceBufferMs, maxMessageSize] = wallaroo.kafkaParseSinkOptions(args);

  const ab = new wallaroo.ApplicationBuilder("Word Count with Kafka");
  ab.newPipeline("Split and Count", new wallaroo.KafkaSourceConfig(inTopic, inBrokers, inLogLevel, decoder))
    .toParallel(split)
    .toStatePartition(countWord, WordTotals, "word totals", partition, WORD_PARTITIONS)
    .toSink(
      new wallaroo.KafkaSinkConfig(outTopic, outBrokers, outLogLevel, maxProduceBufferMs, maxMessageSize, encoder),
    );
  return ab.build();
}

/** A Kafka message value is one line of UTF-8 text (no length header). */
export const decoder = wallaroo.decoder((value: Buffer) => value.toString("utf8"));

export const split = wallaroo.computationMulti("split into words", (line: string) => splitWords(line));

export const countWord = wallaroo.stateComputation(
  "Count Word",
  (word: string, totals: WordTotals): [WordCount, boolean] => {
    totals.update(word);
    return [totals.getCount(word), true];
  },
);

export const partition = wallaroo.partition((word: string) => partitionKey(word));

/** [value, key]: the key is the word, so the Kafka partition of a word is fixed (murmur2, as the Java client). */
export const encoder = wallaroo.encoder((wc: WordCount): [string, string] => [`${wc.word} => ${wc.count}`, wc.word]);
