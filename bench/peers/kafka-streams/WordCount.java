import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;

/**
 * The word count of examples/word_count_kafka as a Kafka Streams program: lines in,
 * one "word => count" record out per word occurrence, keyed by the word. The
 * splitting is the example's (lowercase, strip punctuation from the line's and each
 * word's ends, split on single spaces, drop empty words). Caching is off so that
 * every count update is emitted, as the engine does. Prints RUNNING when the
 * instance is running (the bench starts its clock there); exits on SIGTERM.
 *
 *   java -cp 'target/classes:target/libs/*' WordCount BROKERS IN_TOPIC OUT_TOPIC APP_ID THREADS
 */
public class WordCount {
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

  public static void main(String[] args) throws Exception {
    Properties p = new Properties();
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, args[3]);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(args[4]));
    p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
    p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.String().getClass());
    p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.String().getClass());
    p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
    p.put(StreamsConfig.producerPrefix("acks"), "all");
    StreamsBuilder b = new StreamsBuilder();
    b.stream(args[1], Consumed.with(Serdes.ByteArray(), Serdes.String()))
        .flatMap((k, line) -> {
          List<KeyValue<String, String>> out = new ArrayList<>();
          for (String w : splitWords(line)) out.add(KeyValue.pair(w, w));
          return out;
        })
        .groupByKey(Grouped.with(Serdes.String(), Serdes.String()))
        .count(Materialized.as("word-totals"))
        .toStream()
        .mapValues((word, count) -> word + " => " + count)
        .to(args[2], Produced.with(Serdes.String(), Serdes.String()));
    KafkaStreams streams = new KafkaStreams(b.build(), p);
    CountDownLatch done = new CountDownLatch(1);
    streams.setStateListener((now, before) -> {
      if (now == KafkaStreams.State.RUNNING) System.out.println("RUNNING");
      if (now == KafkaStreams.State.ERROR) { System.out.println("ERROR"); done.countDown(); }
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> { streams.close(); done.countDown(); }));
    streams.start();
    done.await();
  }
}
