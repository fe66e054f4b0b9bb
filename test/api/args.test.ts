import { describe, expect, it } from "vitest";
import * as a from "../../src/api/args.js";
import { WallarooParameterError } from "../../src/api/errors.js";

// What the engine passes: its own flags and the app's, mixed.
const ARGV = [
  "run",
  "examples/word_count.ts",
  "--workers",
  "4",
  "--resilience-dir",
  "/tmp/res",
  "--in",
  "127.0.0.1:7010,localhost:7011",
  "--out",
  "127.0.0.1:7002",
  "--name",
  "worker-1",
  "-v",
];

describe("tcpParseInputAddrs / tcpParseOutputAddrs", () => {
  it("read --in and --out among unrelated flags", () => {
    expect(a.tcpParseInputAddrs(ARGV)).toEqual([
      ["127.0.0.1", 7010],
      ["localhost", 7011],
    ]);
    expect(a.tcpParseOutputAddrs(ARGV)).toEqual([["127.0.0.1", 7002]]);
  });

  it("read the short forms and the --flag=value form", () => {
    expect(a.tcpParseInputAddrs(["-i", "h:1"])).toEqual([["h", 1]]);
    expect(a.tcpParseOutputAddrs(["-o", "h:2,g:3"])).toEqual([
      ["h", 2],
      ["g", 3],
    ]);
    expect(a.tcpParseInputAddrs(["--in=h:1,g:2"])).toEqual([
      ["h", 1],
      ["g", 2],
    ]);
    expect(a.tcpParseOutputAddrs(["-o=h:9"])).toEqual([["h", 9]]);
  });

  it("take the last occurrence, as argparse does", () => {
    expect(a.tcpParseInputAddrs(["--in", "a:1", "-i", "b:2"])).toEqual([["b", 2]]);
  });

  it("accept bracketed IPv6 hosts, spaces and a trailing comma", () => {
    expect(a.tcpParseInputAddrs(["--in", "[::1]:7000, h:7001,"])).toEqual([
      ["::1", 7000],
      ["h", 7001],
    ]);
  });

  it("do not mistake other flags for theirs", () => {
    expect(() => a.tcpParseInputAddrs(["--input", "h:1", "--int", "3", "-ix"])).toThrow(/pass --in host:port/);
  });

  it("throw WallarooParameterError naming the flag when it is missing", () => {
    expect(() => a.tcpParseInputAddrs(["--out", "h:1"])).toThrow(WallarooParameterError);
    expect(() => a.tcpParseInputAddrs(["--out", "h:1"])).toThrow(
      "no input address: pass --in host:port[,host:port...]",
    );
    expect(() => a.tcpParseOutputAddrs([])).toThrow("no output address: pass --out host:port[,host:port...]");
    expect(() => a.tcpParseInputAddrs(["--in", ","])).toThrow(/pass --in/);
  });

  it("throw when the flag has no value", () => {
    expect(() => a.tcpParseInputAddrs(["--in"])).toThrow(/--in needs a value: pass --in host:port/);
    expect(() => a.tcpParseInputAddrs(["-i", "--out", "h:1"])).toThrow(/-i needs a value/);
  });

  it("throw on an address without a port or with a bad port", () => {
    expect(() => a.tcpParseInputAddrs(["--in", "localhost"])).toThrow(/--in: "localhost" has no port; use host:port/);
    expect(() => a.tcpParseInputAddrs(["--in", ":7000"])).toThrow(/--in: ":7000" is not an address/);
    expect(() => a.tcpParseOutputAddrs(["--out", "h:http"])).toThrow(/--out h:http: port "http" is not a port number/);
    expect(() => a.tcpParseOutputAddrs(["--out", "h:70000"])).toThrow(/from 1 to 65535/);
    expect(() => a.tcpParseOutputAddrs(["--out", "h:1:2"])).toThrow(WallarooParameterError);
  });

  it("have snake_case aliases", () => {
    expect(a.tcp_parse_input_addrs).toBe(a.tcpParseInputAddrs);
    expect(a.tcp_parse_output_addrs).toBe(a.tcpParseOutputAddrs);
    expect(a.kafka_parse_source_options).toBe(a.kafkaParseSourceOptions);
    expect(a.kafka_parse_sink_options).toBe(a.kafkaParseSinkOptions);
  });
});

describe("kafkaParseSourceOptions", () => {
  const argv = [
    "run",
    "app.ts",
    "--workers",
    "2",
    "--kafka_source_topic",
    "orders",
    "--kafka_source_brokers",
    "k1:9093,k2",
    "--kafka_source_log_level",
    "Info",
    "--other",
    "x",
  ];

  it("reads topic, brokers (default port 9092) and log level", () => {
    expect(a.kafkaParseSourceOptions(argv)).toEqual([
      "orders",
      [
        ["k1", 9093],
        ["k2", 9092],
      ],
      "Info",
    ]);
  });

  it("defaults the log level to Warn and accepts --flag=value", () => {
    expect(a.kafkaParseSourceOptions(["--kafka_source_topic=t", "--kafka_source_brokers=localhost"])).toEqual([
      "t",
      [["localhost", 9092]],
      "Warn",
    ]);
  });

  it("throws naming the missing flag", () => {
    expect(() => a.kafkaParseSourceOptions(["--kafka_source_brokers", "k"])).toThrow(WallarooParameterError);
    expect(() => a.kafkaParseSourceOptions(["--kafka_source_brokers", "k"])).toThrow(
      "missing --kafka_source_topic: pass --kafka_source_topic TOPIC",
    );
    expect(() => a.kafkaParseSourceOptions(["--kafka_source_topic", "t"])).toThrow(
      /missing --kafka_source_brokers: pass --kafka_source_brokers host\[:port\]/,
    );
    expect(() => a.kafkaParseSourceOptions(["--kafka_source_topic", "t", "--kafka_source_brokers", ","])).toThrow(
      /missing --kafka_source_brokers/,
    );
    // the sink's flags do not stand in for the source's
    expect(() => a.kafkaParseSourceOptions(["--kafka_sink_topic", "t", "--kafka_sink_brokers", "k"])).toThrow(
      /--kafka_source_topic/,
    );
  });

  it("rejects a log level that is not one of Fine, Info, Warn, Error", () => {
    expect(() =>
      a.kafkaParseSourceOptions([
        "--kafka_source_topic",
        "t",
        "--kafka_source_brokers",
        "k",
        "--kafka_source_log_level",
        "Debug",
      ]),
    ).toThrow(
      /--kafka_source_log_level: "Debug" is not a log level; pass --kafka_source_log_level Fine\|Info\|Warn\|Error/,
    );
  });

  it("rejects a bad broker port", () => {
    expect(() => a.kafkaParseSourceOptions(["--kafka_source_topic", "t", "--kafka_source_brokers", "k:x"])).toThrow(
      /--kafka_source_brokers k:x: port "x"/,
    );
  });
});

describe("kafkaParseSinkOptions", () => {
  it("reads every option", () => {
    expect(
      a.kafkaParseSinkOptions([
        "--kafka_sink_topic",
        "out",
        "--kafka_sink_brokers",
        "b1:1,b2:2",
        "--kafka_sink_log_level",
        "Error",
        "--kafka_sink_max_produce_buffer_ms",
        "5",
        "--kafka_sink_max_message_size",
        "2000",
        "--in",
        "h:1",
      ]),
    ).toEqual([
      "out",
      [
        ["b1", 1],
        ["b2", 2],
      ],
      "Error",
      5,
      2000,
    ]);
  });

  it("defaults to Warn, 0 ms and 100000 bytes", () => {
    expect(a.kafkaParseSinkOptions(["--kafka_sink_topic", "out", "--kafka_sink_brokers", "b"])).toEqual([
      "out",
      [["b", 9092]],
      "Warn",
      0,
      100000,
    ]);
  });

  it("throws naming the flag to fix", () => {
    expect(() => a.kafkaParseSinkOptions(["--kafka_sink_brokers", "b"])).toThrow(
      "missing --kafka_sink_topic: pass --kafka_sink_topic TOPIC",
    );
    expect(() => a.kafkaParseSinkOptions(["--kafka_sink_topic", "t"])).toThrow(/missing --kafka_sink_brokers/);
    expect(() =>
      a.kafkaParseSinkOptions([
        "--kafka_sink_topic",
        "t",
        "--kafka_sink_brokers",
        "b",
        "--kafka_sink_max_message_size",
        "big",
      ]),
    ).toThrow(/--kafka_sink_max_message_size must be an integer >= 1, got 'big'/);
    expect(() =>
      a.kafkaParseSinkOptions([
        "--kafka_sink_topic",
        "t",
        "--kafka_sink_brokers",
        "b",
        "--kafka_sink_max_produce_buffer_ms",
        "-1",
      ]),
    ).toThrow(/--kafka_sink_max_produce_buffer_ms needs a value/);
    expect(() =>
      a.kafkaParseSinkOptions([
        "--kafka_sink_topic",
        "t",
        "--kafka_sink_brokers",
        "b",
        "--kafka_sink_max_message_size",
        "0",
      ]),
    ).toThrow(WallarooParameterError);
  });
});

describe("single addresses and port 0", () => {
  it("tcpParseInputAddr returns the one [host, port]; port 0 (any free port) is accepted for --in only", () => {
    expect(a.tcpParseInputAddr(["--in", "127.0.0.1:0"])).toEqual(["127.0.0.1", 0]);
    expect(a.tcp_parse_input_addr(["-i", "h:7010"])).toEqual(["h", 7010]);
    expect(a.tcpParseInputAddrs(["--in", "h:0,h:0"])).toEqual([
      ["h", 0],
      ["h", 0],
    ]);
    expect(a.tcpParseOutputAddr(["--out", "h:7002"])).toEqual(["h", 7002]);
    expect(() => a.tcpParseOutputAddr(["--out", "h:0"])).toThrow(
      /port "0" is not a port number; give an integer from 1 to 65535/,
    );
  });

  it("throws when there is no address or more than one", () => {
    expect(() => a.tcpParseInputAddr([])).toThrow("no input address: pass --in host:port[,host:port...]");
    expect(() => a.tcpParseInputAddr(["--in", "h:1,h:2"])).toThrow(
      "--in gives 2 addresses where the application takes one; pass one host:port, or read them all with tcpParseInputAddrs(args)",
    );
  });
});
