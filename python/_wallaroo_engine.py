"""
The engine's side of a Python application, inside each thread's interpreter:
loads the application module, turns what its application_setup returned into
plain descriptions the engine replays (src/runtime/python.ts), and wraps each
user function in an adapter that the engine calls across the JS <-> Python
boundary.

What crosses the boundary, and why the adapters look like this:
- str, int, bool and None become JavaScript values and come back unchanged; every
  other Python object stays in Python behind a proxy. A float would come back as
  an int when integral (3.0 -> 3 -> 3), so floats cross boxed in _Float.
- Partition keys become engine keys: str and int as they are, bytes and every
  other hashable as a tagged string (see engine_key), so equal Python keys are
  equal engine keys on every worker.
- Bytes leave Python as Uint8Array (one copy), never as base64 or JSON.
"""

import importlib
import pickle
import sys

import wallaroo
from pyodide.ffi import to_js


class _Float(object):
    """A Python float on its way through the engine (see the module docstring)."""
    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v

    def __repr__(self):
        return repr(self.v)

    def __str__(self):
        return str(self.v)


def _out(r):
    return _Float(r) if type(r) is float else r


def _in(x):
    return x.v if type(x) is _Float else x


_PICKLED = "\x00p:"
_BYTES = "\x00b:"


def engine_key(k):
    t = type(k)
    if t is str or t is int:
        return k
    if t is bool:
        return int(k)
    if t is bytes:
        return _BYTES + k.decode("latin-1")
    if t is float and k.is_integer():
        return int(k)  # 1.0 == 1 in Python: one key
    # any other hashable (tuples, user classes with __eq__/__hash__): its pickle, the same on every worker
    return _PICKLED + pickle.dumps(k, protocol=4).decode("latin-1")


def _computation(f, multi):
    if multi:
        def run(x):
            r = f(_in(x))
            if r is None:
                return None
            return [_out(e) for e in r]
    else:
        def run(x):
            r = f(_in(x))
            return _Float(r) if type(r) is float else r
    return run


def _state_computation(f, multi):
    def run(x, state):
        r = f(_in(x), state)
        if type(r) is not tuple or len(r) != 2:
            raise TypeError(
                "a state computation must return (output, save_state), got {0!r}".format(r))
        out, save = r
        if out is not None:
            out = [_out(e) for e in out] if multi else _out(out)
        return (out, bool(save))
    return run


def _partition(f):
    def run(x):
        return engine_key(f(_in(x)))
    return run


def _decoder(f):
    def run(buf):
        r = f(buf.to_bytes())
        return _Float(r) if type(r) is float else r
    return run


def _as_bytes(v, what):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return to_js(bytes(v) if type(v) is not bytes else v)
    if isinstance(v, str):
        return v
    raise TypeError("{0} must return bytes (or str), got {1}".format(what, type(v).__name__))


def _tcp_encoder(f):
    def run(x):
        return _as_bytes(f(_in(x)), "a TCP sink's encoder")
    return run


def _kafka_encoder(f):
    def run(x):
        r = f(_in(x))
        if type(r) is not tuple or len(r) != 2:
            raise TypeError("a Kafka sink's encoder must return (bytes, key), got {0!r}".format(r))
        value, key = r
        value = None if value is None else _as_bytes(value, "a Kafka sink's encoder")
        key = None if key is None else _as_bytes(key, "a Kafka sink's encoder key")
        return to_js([value, key])
    return run


def _kind(obj, kind, where):
    if not isinstance(obj, wallaroo._Wrapped) or obj._kind != kind:
        raise wallaroo.WallarooParameterError(
            "{0}: expected a function decorated with @wallaroo.{1}, got {2!r}".format(where, kind, obj))
    return obj


def _computation_desc(c, method, state):
    kind = "state_computation" if state else "computation"
    c = _kind(c, kind, method)
    fn = _state_computation(c.func, c.multi) if state else _computation(c.func, c.multi)
    return {"name": str(c.name), "multi": c.multi, "fn": fn}


def _source(cfg, where):
    if isinstance(cfg, wallaroo.TCPSourceConfig):
        d = _kind(cfg.decoder, "decoder", where + " TCPSourceConfig")
        return {"kind": "tcp", "host": cfg.host, "port": str(cfg.port), "decoder": _decoder_desc(d)}
    if isinstance(cfg, wallaroo.KafkaSourceConfig):
        d = _kind(cfg.decoder, "decoder", where + " KafkaSourceConfig")
        return {"kind": "kafka", "topic": cfg.topic, "brokers": [[h, str(p)] for (h, p) in cfg.brokers],
                "log_level": cfg.log_level, "decoder": _decoder_desc(d)}
    raise wallaroo.WallarooParameterError(
        "{0}: the source must be a wallaroo.TCPSourceConfig or wallaroo.KafkaSourceConfig, got {1!r}".format(where, cfg))


def _decoder_desc(d):
    return {"header_length": d.header_length, "length_fmt": d.length_fmt, "fn": _decoder(d.func)}


def _sink(cfg, where):
    if isinstance(cfg, wallaroo.TCPSinkConfig):
        e = _kind(cfg.encoder, "encoder", where + " TCPSinkConfig")
        return {"kind": "tcp", "host": cfg.host, "port": str(cfg.port), "fn": _tcp_encoder(e.func)}
    if isinstance(cfg, wallaroo.KafkaSinkConfig):
        e = _kind(cfg.encoder, "encoder", where + " KafkaSinkConfig")
        return {"kind": "kafka", "topic": cfg.topic, "brokers": [[h, str(p)] for (h, p) in cfg.brokers],
                "log_level": cfg.log_level, "max_produce_buffer_ms": cfg.max_produce_buffer_ms,
                "max_message_size": cfg.max_message_size, "fn": _kafka_encoder(e.func)}
    raise wallaroo.WallarooParameterError(
        "{0}: a sink must be a wallaroo.TCPSinkConfig or wallaroo.KafkaSinkConfig, got {1!r}".format(where, cfg))


def _state_class(cls, where):
    if not isinstance(cls, type):
        raise wallaroo.WallarooParameterError(
            "{0}: the state must be a class (its instances are the state), got {1!r}".format(where, cls))
    # id: one engine class per Python class, so that a state shared by name across pipelines is one class
    return {"name": cls.__name__, "make": cls, "id": id(cls)}


def describe(app):
    """The recorded calls of build() as plain dicts of str, bool, lists and adapter functions."""
    if not isinstance(app, wallaroo.Application):
        raise wallaroo.WallarooParameterError(
            "application_setup must return ApplicationBuilder(...).build(), got {0!r}".format(app))
    out = []
    for a in app.actions:
        op = a[0]
        if op == "new_pipeline":
            out.append({"op": op, "name": a[1], "source": _source(a[2], "new_pipeline({0!r})".format(a[1]))})
        elif op in ("to", "to_parallel"):
            out.append({"op": op, "computation": _computation_desc(a[1], op, False)})
        elif op == "to_stateful":
            out.append({"op": op, "computation": _computation_desc(a[1], op, True),
                        "state": _state_class(a[2], op), "state_name": a[3]})
        elif op in ("to_state_partition", "to_state_partition_u64"):
            p = _kind(a[4], "partition", op)
            keys = a[5]
            out.append({"op": op, "computation": _computation_desc(a[1], op, True),
                        "state": _state_class(a[2], op), "state_name": a[3],
                        "partition": _partition(p.func), "partition_id": id(p),
                        "keys": None if keys is None else [engine_key(k) for k in keys]})
        elif op == "to_sink":
            out.append({"op": op, "sinks": [_sink(a[1], "to_sink")]})
        elif op == "to_sinks":
            out.append({"op": op, "sinks": [_sink(s, "to_sinks") for s in a[1]]})
        elif op == "done":
            out.append({"op": op})
    return {"name": str(app.name), "actions": out}


_app = None


def load(name):
    """Imports the application module (as `name`, so pickle finds its classes by module)."""
    global _app
    _app = importlib.import_module(name)


def setup(args):
    setup = getattr(_app, "application_setup", None)
    if not callable(setup):
        raise wallaroo.WallarooParameterError(
            "{0} defines no application_setup(args); define one returning ApplicationBuilder(...).build()".format(
                getattr(_app, "__file__", name)))
    return describe(setup([str(a) for a in args]))


def serde():
    """The app's top-level serialize/deserialize if it defines both, else pickle, as adapters."""
    ser = getattr(_app, "serialize", None)
    de = getattr(_app, "deserialize", None)
    if not (callable(ser) and callable(de)):
        ser, de = wallaroo.serialize, wallaroo.deserialize

    def pack(x):
        b = ser(_in(x))
        if not isinstance(b, (bytes, bytearray)):
            raise TypeError("serialize() must return bytes, got {0}".format(type(b).__name__))
        return to_js(b)

    def unpack(buf):
        r = de(buf.to_bytes())
        return _Float(r) if type(r) is float else r
    return [pack, unpack]
