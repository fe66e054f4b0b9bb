/**
 * wallaroo: Wallaroo-style stream processing for Node.js. The public surface is
 * the Wallaroo Python API in TypeScript form (see README.md and docs/api.md).
 */
export { WallarooParameterError } from "./api/errors.js";
export { ApplicationBuilder } from "./api/builder.js";
export type { Pipeline, StateClass, StateOptions } from "./api/builder.js";
export { DELETE } from "./topology/spec.js";
export { milliseconds, seconds, minutes, hours } from "./api/durations.js";
export {
  computation,
  computationMulti,
  stateComputation,
  stateComputationMulti,
  partition,
  encoder,
  decoder,
  computation_multi,
  state_computation,
  state_computation_multi,
} from "./api/wrappers.js";
export type { AsyncOptions, DecoderOptions, StateResult, StateMultiResult } from "./api/wrappers.js";
export {
  aggregation,
  rangeWindows,
  countWindows,
  sessionWindows,
  range_windows,
  count_windows,
  session_windows,
  RangeWindowsBuilder,
  CountWindowsBuilder,
  SessionWindowsBuilder,
} from "./api/windows.js";
export type {
  Aggregation,
  AggregationClass,
  AggregationDefinition,
  LateDataPolicy,
  WindowBounds,
  Windows,
} from "./api/windows.js";
export {
  TCPSourceConfig,
  TCPSinkConfig,
  KafkaSourceConfig,
  KafkaSinkConfig,
  FileSourceConfig,
  FileSinkConfig,
} from "./api/configs.js";
export type {
  KafkaLogLevel,
  SourceOptions,
  KafkaSinkOptions,
  KafkaSourceOptions,
  SourceConfig,
  SinkConfig,
  TCPSourceOptions,
  FileSourceOptions,
  FileSinkOptions,
} from "./api/configs.js";
export type { KafkaSaslOptions, KafkaSecret, KafkaSecurity, KafkaTlsOptions } from "./api/kafka-security.js";
export type { KafkaSaslMechanism, KafkaRecordMeta } from "./topology/kafka.js";
export {
  tcpParseInputAddrs,
  tcpParseOutputAddrs,
  kafkaParseSourceOptions,
  kafkaParseSinkOptions,
  tcp_parse_input_addrs,
  tcp_parse_output_addrs,
  kafka_parse_source_options,
  kafka_parse_sink_options,
  kafkaParseSourceSecurity,
  kafkaParseSinkSecurity,
  kafka_parse_source_security,
  kafka_parse_sink_security,
  tcpParseInputAddr,
  tcpParseOutputAddr,
  tcp_parse_input_addr,
  tcp_parse_output_addr,
} from "./api/args.js";
export type {
  ApplicationSpec,
  Key,
  Computation,
  StateComputation,
  PartitionFunction,
  Decoder,
  Encoder,
} from "./topology/spec.js";
export { runApplication, EngineError, EngineStopError, maxWorkers } from "./runtime/coordinator.js";
export type { Application, EngineOptions, EngineFailure, StopReport } from "./runtime/coordinator.js";
export { EngineOptionError, ENGINE_FLAGS } from "./runtime/options.js";
export type { EngineFlag } from "./runtime/options.js";
