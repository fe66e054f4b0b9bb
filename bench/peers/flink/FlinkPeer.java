import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichFlatMapFunction;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.api.common.serialization.SimpleStringSchema;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.Collector;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * The peers of examples/word_count_kafka and examples/celsius_kafka as one Flink DataStream
 * program, run on a local MiniCluster inside this JVM (no cluster to install).
 *
 * word_count: lines in (UTF-8 values), one record out per word occurrence: key = the word,
 * value = "word => count" with the word's running count, partitioned by the Kafka producer's
 * default partitioner (murmur2 of the key, as the engine's sink), so every count of a word
 * lands in one partition, in order. The splitting is the example's (lowercase, strip
 * punctuation from the line's and each word's ends, split on single spaces, drop empty words).
 *
 * celsius: 4-byte big-endian floats in, the Fahrenheit value (c * 1.8 + 32 in doubles) as text
 * with two decimals out, no key, formatted as JavaScript's Number.prototype.toFixed(2) does.
 *
 * Baseline configuration, as the engine without --resilience-dir: checkpointing off, the sink's
 * delivery guarantee NONE (no transactions), acks=all. Prints RUNNING once the job runs (the
 * bench starts its clock there) and cancels the job on SIGTERM.
 *
 *   java -cp 'target/classes:target/libs/*' FlinkPeer word_count|celsius BROKERS IN OUT GROUP PARALLELISM
 */
public class FlinkPeer {
  /** set by the shutdown hook: the job's end was asked for */
  static volatile boolean stopping = false;

  static final String PUNCTUATION = " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

  static String strip(String s) {
    int start = 0, end = s.length();
    while (start < end && PUNCTUATION.indexOf(s.charAt(start)) >= 0) start++;
    while (end > start && PUNCTUATION.indexOf(s.charAt(end - 1)) >= 0) end--;
    return s.substring(start, end);
  }

  static List<String> splitWords(String text) {
    List<String> words = new ArrayList<>();
    for (String line : text.split("\n", -1)) {
      String clean = strip(line.toLowerCase(Locale.ROOT));
      for (String w : clean.split(" ", -1)) {
        String c = strip(w);
        if (!c.isEmpty()) words.add(c);
      }
    }
    return words;
  }

  /**
   * JavaScript's x.toFixed(2): the exact binary value rounded half up on its magnitude, the sign
   * kept even when the rounded magnitude is 0 ("-0.00" for -0.001; but -0 itself gives "0.00").
   * String.format("%.2f") differs: it rounds the shortest decimal repr, not the exact value.
   */
  static String toFixed2(double x) {
    String mag = new BigDecimal(Math.abs(x)).setScale(2, RoundingMode.HALF_UP).toPlainString();
    return x < 0 ? "-" + mag : mag;
  }

  /** Counts per word in keyed state (heap backend): one output per occurrence, as the engine's WordTotals. */
  static class Count extends RichFlatMapFunction<String, Tuple2<String, String>> {
    private transient ValueState<Long> count;

    @Override
    public void open(OpenContext ctx) {
      count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Types.LONG));
    }

    @Override
    public void flatMap(String word, Collector<Tuple2<String, String>> out) throws Exception {
      Long c = count.value();
      long n = c == null ? 1 : c + 1;
      count.update(n);
      out.collect(Tuple2.of(word, word + " => " + n));
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 6)
      throw new IllegalArgumentException("usage: FlinkPeer word_count|celsius BROKERS IN OUT GROUP PARALLELISM");
    String app = args[0], brokers = args[1], in = args[2], out = args[3], group = args[4];
    int parallelism = Integer.parseInt(args[5]);

    Configuration conf = new Configuration();
    conf.set(RestOptions.BIND_PORT, "0"); // no fixed port: several runs may overlap on one machine
    StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
    env.setParallelism(parallelism);

    Properties producer = new Properties();
    producer.setProperty("acks", "all");

    if (app.equals("word_count")) {
      KafkaSource<String> source = KafkaSource.<String>builder()
          .setBootstrapServers(brokers)
          .setTopics(in)
          .setGroupId(group)
          .setStartingOffsets(OffsetsInitializer.earliest())
          .setDeserializer(KafkaRecordDeserializationSchema.valueOnly(new SimpleStringSchema()))
          .build();
      // No partitioner set: the record's partition stays null, so the producer's default
      // partitioner (murmur2 of the key bytes) places it, as the engine's sink does.
      KafkaSink<Tuple2<String, String>> sink = KafkaSink.<Tuple2<String, String>>builder()
          .setBootstrapServers(brokers)
          .setKafkaProducerConfig(producer)
          .setDeliveryGuarantee(DeliveryGuarantee.NONE)
          .setRecordSerializer(KafkaRecordSerializationSchema.<Tuple2<String, String>>builder()
              .setTopic(out)
              .setKeySerializationSchema(
                  (SerializationSchema<Tuple2<String, String>>) t -> t.f0.getBytes(StandardCharsets.UTF_8))
              .setValueSerializationSchema(
                  (SerializationSchema<Tuple2<String, String>>) t -> t.f1.getBytes(StandardCharsets.UTF_8))
              .build())
          .build();
      DataStream<String> lines = env.fromSource(source, WatermarkStrategy.noWatermarks(), "lines");
      lines
          .flatMap((FlatMapFunction<String, String>) (line, o) -> {
            for (String w : splitWords(line)) o.collect(w);
          })
          .returns(Types.STRING)
          .name("split into words")
          .keyBy(w -> w)
          .flatMap(new Count())
          .returns(Types.TUPLE(Types.STRING, Types.STRING))
          .name("count word")
          .sinkTo(sink)
          .name("counts");
    } else if (app.equals("celsius")) {
      KafkaSource<byte[]> source = KafkaSource.<byte[]>builder()
          .setBootstrapServers(brokers)
          .setTopics(in)
          .setGroupId(group)
          .setStartingOffsets(OffsetsInitializer.earliest())
          .setDeserializer(KafkaRecordDeserializationSchema.valueOnly(ByteArrayDeserializer.class))
          .build();
      KafkaSink<String> sink = KafkaSink.<String>builder()
          .setBootstrapServers(brokers)
          .setKafkaProducerConfig(producer)
          .setDeliveryGuarantee(DeliveryGuarantee.NONE)
          .setRecordSerializer(KafkaRecordSerializationSchema.<String>builder()
              .setTopic(out)
              .setValueSerializationSchema(new SimpleStringSchema())
              .build())
          .build();
      env.fromSource(source, WatermarkStrategy.noWatermarks(), "celsius")
          .map(v -> toFixed2((double) ByteBuffer.wrap(v).getFloat() * 1.8 + 32))
          .returns(Types.STRING)
          .name("to fahrenheit")
          .sinkTo(sink)
          .name("fahrenheit");
    } else {
      throw new IllegalArgumentException("app: word_count or celsius, not " + app);
    }

    JobClient job = env.executeAsync("wallaroo bench peer: " + app);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      stopping = true;
      try {
        job.cancel().get();
      } catch (Exception e) {
        // already ended
      }
    }));
    while (true) {
      JobStatus s = job.getJobStatus().get();
      if (s == JobStatus.RUNNING) break;
      if (s.isTerminalState()) {
        System.out.println("ERROR job " + s);
        System.exit(1);
      }
      Thread.sleep(20);
    }
    System.out.println("RUNNING");
    // A job that ends by itself (broker gone, bad record) must not look like a slow one: say so, exit 1.
    Throwable failure = job.getJobExecutionResult().handle((r, e) -> e).get();
    if (!stopping) {
      System.out.println("ERROR job ended: " + failure);
      System.exit(1);
    }
  }
}
