import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.ByteBuffer;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;

/**
 * The celsius conversion of examples/celsius_kafka as a Kafka Streams program: 4-byte big-endian
 * floats in, the Fahrenheit value (c * 1.8 + 32 in doubles) as text with two decimals out, no key,
 * formatted as JavaScript's toFixed(2). Stateless, so no cache or store is involved. Prints RUNNING
 * when the instance is running (the bench starts its clock there); exits on SIGTERM.
 *
 *   java -cp 'target/classes:target/libs/*' Celsius BROKERS IN_TOPIC OUT_TOPIC APP_ID THREADS
 */
public class Celsius {
  /** JavaScript's x.toFixed(2): the exact binary value rounded half up on its magnitude, sign kept ("-0.00"). */
  static String toFixed2(double x) {
    String mag = new BigDecimal(Math.abs(x)).setScale(2, RoundingMode.HALF_UP).toPlainString();
    return x < 0 ? "-" + mag : mag;
  }

  public static void main(String[] args) throws Exception {
    Properties p = new Properties();
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, args[3]);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(args[4]));
    p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
    p.put(StreamsConfig.producerPrefix("acks"), "all");
    StreamsBuilder b = new StreamsBuilder();
    b.stream(args[1], Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
        .mapValues(v -> toFixed2((double) ByteBuffer.wrap(v).getFloat() * 1.8 + 32))
        .to(args[2], Produced.with(Serdes.ByteArray(), Serdes.String()));
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
