/**
 * Celsius to Fahrenheit over Kafka: reads temperatures in degrees Celsius from a
 * Kafka topic (each message value a big-endian 32-bit float, Python struct ">f"),
 * converts them and writes the Fahrenheit value as text to another topic, with
 * no key. A port of Wallaroo's Python `celsius-kafka` example; the topics and
 * brokers come from the --kafka_source_* / --kafka_sink_* options.
 */
import * as wallaroo from "wallaroo";

export function applicationSetup(args: string[]) {
  const [inTopic, inBrokers, inLogLevel] = wallaroo.kafkaParseSourceOptions(args);
  const [outTopic, outBrokers, outLogLevel, maxProduceBufferMs, maxMessageSize] = wallaroo.kafkaParseSinkOptions(args);

  const ab = new wallaroo.ApplicationBuilder("Celsius to Fahrenheit with Kafka");
  ab.newPipeline("Celsius Conversion", new wallaroo.KafkaSourceConfig(inTopic, inBrokers, inLogLevel, decoder))
    .toParallel(multiply)
    .to(add)
    .toSink(
      new wallaroo.KafkaSinkConfig(outTopic, outBrokers, outLogLevel, maxProduceBufferMs, maxMessageSize, encoder),
    );
  return ab.build();
}

/** A Kafka message value is the whole payload (no length header): 4 bytes, a big-endian float. */
export const decoder = wallaroo.decoder((value: Buffer) => value.readFloatBE(0));

export const multiply = wallaroo.computation("multiply by 1.8", (c: number) => c * 1.8);

export const add = wallaroo.computation("add 32", (f: number) => f + 32);

/** [value, key]: the Fahrenheit value with two decimals, no key (the sink spreads records over partitions). */
export const encoder = wallaroo.encoder((f: number): [string, null] => [f.toFixed(2), null]);
