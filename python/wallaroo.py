"""
The Wallaroo 0.5 Python API (see the README, "Python applications"), for
applications run by `wallaroo run APP.py`.

This module only records what the application declares: the decorators wrap
the user's functions, ApplicationBuilder keeps the list of calls, and build()
returns it. The engine (src/runtime/python.ts with _wallaroo_engine.py) replays
that list on the engine's own ApplicationBuilder, which validates it and names
the first mistake, so a Python application gets the same checks, ordering,
backpressure, resilience, metrics and dead letters as a TypeScript one.

The argument helpers parse as Machida's did (argparse, unknown flags ignored),
so `application_setup(args)` sees every argument of `wallaroo run`.
"""

import argparse
import pickle
import struct

__all__ = [
    "ApplicationBuilder", "WallarooParameterError",
    "computation", "computation_multi", "state_computation", "state_computation_multi",
    "partition", "decoder", "encoder",
    "TCPSourceConfig", "TCPSinkConfig", "KafkaSourceConfig", "KafkaSinkConfig",
    "tcp_parse_input_addrs", "tcp_parse_output_addrs",
    "kafka_parse_source_options", "kafka_parse_sink_options",
    "serialize", "deserialize",
]


def serialize(o):
    """The default inter-worker serialization (an app may define its own top-level serialize)."""
    return pickle.dumps(o, protocol=pickle.HIGHEST_PROTOCOL)


def deserialize(bs):
    return pickle.loads(bs)


class WallarooParameterError(Exception):
    pass


class _Wrapped(object):
    """A decorated function: still callable as the function it wraps (handy in tests)."""

    def __init__(self, kind, func, name=None, multi=False, header_length=None, length_fmt=None):
        if not callable(func):
            raise WallarooParameterError(
                "@wallaroo.{0} must decorate a function, got {1!r}".format(kind, func))
        self._kind = kind
        self.func = func
        self.name = name if name is not None else getattr(func, "__name__", kind)
        self.multi = multi
        self.header_length = header_length
        self.length_fmt = length_fmt

    def __call__(self, *args, **kwargs):
        return self.func(*args, **kwargs)

    def __repr__(self):
        return "<wallaroo.{0} {1!r}>".format(self._kind, self.name)


def _named(kind, multi):
    def decorator_factory(name=None):
        # @wallaroo.computation(name="x") and, leniently, a bare @wallaroo.computation
        if callable(name) and not isinstance(name, str):
            return _Wrapped(kind, name, None, multi)

        def wrap(func):
            return _Wrapped(kind, func, name, multi)
        return wrap
    decorator_factory.__name__ = kind + ("_multi" if multi else "")
    return decorator_factory


computation = _named("computation", False)
computation_multi = _named("computation", True)
state_computation = _named("state_computation", False)
state_computation_multi = _named("state_computation", True)


def partition(func):
    return _Wrapped("partition", func)


def encoder(func):
    return _Wrapped("encoder", func)


def decoder(header_length=4, length_fmt=">I"):
    # a bare @wallaroo.decoder takes the defaults
    if callable(header_length):
        return _Wrapped("decoder", header_length, None, False, 4, ">I")

    def wrap(func):
        return _Wrapped("decoder", func, None, False, header_length, length_fmt)
    return wrap


class TCPSourceConfig(object):
    def __init__(self, host, port, decoder):
        self.host = host
        self.port = port
        self.decoder = decoder


class TCPSinkConfig(object):
    def __init__(self, host, port, encoder):
        self.host = host
        self.port = port
        self.encoder = encoder


class KafkaSourceConfig(object):
    def __init__(self, topic, brokers, log_level, decoder):
        self.topic = topic
        self.brokers = brokers
        self.log_level = log_level
        self.decoder = decoder


class KafkaSinkConfig(object):
    def __init__(self, topic, brokers, log_level, max_produce_buffer_ms, max_message_size, encoder):
        self.topic = topic
        self.brokers = brokers
        self.log_level = log_level
        self.max_produce_buffer_ms = max_produce_buffer_ms
        self.max_message_size = max_message_size
        self.encoder = encoder


class Application(object):
    """What ApplicationBuilder.build() returns: the name and the recorded calls, in order."""

    def __init__(self, name, actions):
        self.name = name
        self.actions = actions


class ApplicationBuilder(object):
    """Records the calls; the engine validates them when it builds the application."""

    def __init__(self, name):
        self._name = name
        self._actions = []

    def new_pipeline(self, name, source_config):
        self._actions.append(("new_pipeline", name, source_config))
        return self

    def to(self, computation):
        self._actions.append(("to", computation))
        return self

    def to_parallel(self, computation):
        self._actions.append(("to_parallel", computation))
        return self

    def to_stateful(self, computation, state_class, state_name):
        self._actions.append(("to_stateful", computation, state_class, state_name))
        return self

    def to_state_partition(self, computation, state_class, state_partition_name,
                           partition_function, partition_keys=None):
        self._actions.append(("to_state_partition", computation, state_class, state_partition_name,
                              partition_function, partition_keys))
        return self

    def to_state_partition_u64(self, computation, state_class, state_partition_name,
                               partition_function, partition_keys=None):
        self._actions.append(("to_state_partition_u64", computation, state_class, state_partition_name,
                              partition_function, partition_keys))
        return self

    def to_sink(self, sink_config):
        self._actions.append(("to_sink", sink_config))
        return self

    def to_sinks(self, sink_configs):
        self._actions.append(("to_sinks", sink_configs))
        return self

    def done(self):
        self._actions.append(("done",))
        return self

    def build(self):
        return Application(self._name, list(self._actions))


def _addrs(args, short, long, dest):
    parser = argparse.ArgumentParser(prog="wallaroo", add_help=False, allow_abbrev=False)
    parser.add_argument(short, long, dest=dest)
    value = getattr(parser.parse_known_args(list(args))[0], dest)
    if value is None:
        raise WallarooParameterError(
            "{0} HOST:PORT[,HOST:PORT...] is missing from the command line".format(long))
    # H1:P1,H2:P2 -> [(H1, P1), (H2, P2)], the ports as strings, as Machida gave them
    return [tuple(x.rsplit(":", 1)) for x in value.split(",")]


def tcp_parse_input_addrs(args):
    return _addrs(args, "-i", "--in", "input_addrs")


def tcp_parse_output_addrs(args):
    return _addrs(args, "-o", "--out", "output_addrs")


_LOG_LEVELS = ["Fine", "Info", "Warn", "Error"]


def _kafka_parse_broker(broker):
    host_and_port = broker.split(":")
    return (host_and_port[0], host_and_port[1] if len(host_and_port) == 2 else "9092")


def kafka_parse_source_options(args):
    parser = argparse.ArgumentParser(prog="wallaroo", add_help=False, allow_abbrev=False)
    parser.add_argument("--kafka_source_topic", dest="topic", default="")
    parser.add_argument("--kafka_source_brokers", dest="brokers", default="")
    parser.add_argument("--kafka_source_log_level", dest="log_level", default="Warn", choices=_LOG_LEVELS)
    known = parser.parse_known_args(list(args))[0]
    brokers = [_kafka_parse_broker(b) for b in known.brokers.split(",") if b]
    return (known.topic, brokers, known.log_level)


def kafka_parse_sink_options(args):
    parser = argparse.ArgumentParser(prog="wallaroo", add_help=False, allow_abbrev=False)
    parser.add_argument("--kafka_sink_topic", dest="topic", default="")
    parser.add_argument("--kafka_sink_brokers", dest="brokers", default="")
    parser.add_argument("--kafka_sink_log_level", dest="log_level", default="Warn", choices=_LOG_LEVELS)
    parser.add_argument("--kafka_sink_max_produce_buffer_ms", dest="max_produce_buffer_ms", type=int, default=0)
    parser.add_argument("--kafka_sink_max_message_size", dest="max_message_size", type=int, default=100000)
    known = parser.parse_known_args(list(args))[0]
    brokers = [_kafka_parse_broker(b) for b in known.brokers.split(",") if b]
    return (known.topic, brokers, known.log_level, known.max_produce_buffer_ms, known.max_message_size)


def _check_length_fmt(header_length, length_fmt):
    """The header format as struct sees it (used by the engine and the test reference)."""
    return struct.calcsize(length_fmt) == header_length
