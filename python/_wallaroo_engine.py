"""
The engine's side of a Python application, inside each thread's interpreter:
loads the application module, turns what its application_setup returned into
plain descriptions the engine replays (src/runtime/python.ts), and wraps each
user function in an adapter that the engine calls across the JS <-> Python
boundary.

What crosses the boundary, and why the adapters look like this: handing
JavaScript a Python object costs a Pyodide proxy (11-15 us each,
bench/ANALYSIS.md), while an int or a str crosses in 1-3 us. So every value
between steps stays in this interpreter, in `_table`, and JavaScript holds only
its integer handle (a PyRef, python.ts). JavaScript frees handles in batches
(`free`) once it no longer holds their PyRef. The adapters take and return only
ints and strs:
- a step returns the handle of its output, or None (sends nothing on);
- a _multi step returns "START COUNT": its outputs have the consecutive handles
  START.. (None elements are left out);
- a state step returns 2*handle + save_state (0 + save_state for None); its
  _multi form "START COUNT SAVE";
- bytes for a sink or for another worker leave as a latin-1 str, one char per
  byte, which JavaScript turns back into bytes (no base64, no JSON);
- partition keys become engine keys: str and int as they are, bytes and every
  other hashable as a tagged string (see engine_key), so equal Python keys are
  equal engine keys on every worker.
"""

import importlib
import pickle

import wallaroo
from pyodide.ffi import to_js

_table = {}
_next = 1


def _put(v):
    global _next
    h = _next
    _next = h + 1
    _table[h] = v
    return h


def free(handles):
    """Drops the values whose PyRefs JavaScript no longer holds ("h1 h2 ...")."""
    pop = _table.pop
    for h in handles.split(" "):
        pop(int(h), None)


def live():
    return len(_table)


def describe_value(h):
    """repr() of a value, for dead letters and logs."""
    try:
        return repr(_table[h])
    except Exception as e:  # noqa: BLE001 (a user __repr__ that fails must not hide the original error)
        return "<unprintable value: {0!r}>".format(e)


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


def _many(rs):
    start = _next
    n = 0
    for e in rs:
        if e is not None:
            _put(e)
            n += 1
    return start, n


def _computation(f, multi):
    t = _table
    if multi:
        def run(h):
            rs = f(t[h])
            if rs is None:
                return None
            start, n = _many(rs)
            return "{0} {1}".format(start, n)
    else:
        def run(h):
            r = f(t[h])
            return None if r is None else _put(r)
    return run


def _state_computation(f, multi):
    t = _table

    def run(h, s):
        r = f(t[h], t[s])
        if type(r) is not tuple or len(r) != 2:
            raise TypeError(
                "a state computation must return (output, save_state), got {0!r}".format(r))
        out, save = r
        if multi:
            start, n = _many(out) if out is not None else (0, 0)
            return "{0} {1} {2}".format(start, n, 1 if save else 0)
        return (0 if out is None else 2 * _put(out)) + (1 if save else 0)
    return run


def _partition(f):
    t = _table

    def run(h):
        return engine_key(f(t[h]))
    return run


def _decoder(f):
    def run(buf):
        r = f(buf.to_bytes())
        return None if r is None else _put(r)
    return run


def _latin1(v, what):
    if isinstance(v, str):
        return v.encode("utf-8").decode("latin-1")
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).decode("latin-1")
    raise TypeError("{0} must return bytes (or str), got {1}".format(what, type(v).__name__))


def _tcp_encoder(f):
    t = _table

    def run(h):
        return _latin1(f(t[h]), "a TCP sink's encoder")
    return run


def _as_bytes(v, what):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return to_js(bytes(v) if type(v) is not bytes else v)
    if isinstance(v, str):
        return v
    raise TypeError("{0} must return bytes (or str), got {1}".format(what, type(v).__name__))


def _kafka_encoder(f):
    t = _table

    def run(h):
        r = f(t[h])
        if type(r) is not tuple or len(r) != 2:
            raise TypeError("a Kafka sink's encoder must return (bytes, key), got {0!r}".format(r))
        value, key = r
        value = None if value is None else _as_bytes(value, "a Kafka sink's encoder")
        key = None if key is None else _as_bytes(key, "a Kafka sink's encoder key")
        return to_js([value, key])
    return run


def _maker(cls):
    def make():
        return _put(cls())
    return make


def _kind(obj, kind, where):
    if not isinstance(obj, wallaroo._Wrapped) or obj._kind != kind:
        raise wallaroo.WallarooParameterError(
            "{0}: expected a function decorated with @wallaroo.{1}, got {2!r}".format(where, kind, obj))
    return obj


def _computation_desc(c, method, state):
    kind = "state_computation" if state else "computation"
    c = _kind(c, kind, method)
    fn = _state_computation(c.func, c.multi) if state else _computation(c.func, c.multi)
    # id: one engine computation per Python one, so that a step reused in two pipelines is one computation
    return {"name": str(c.name), "multi": c.multi, "fn": fn, "id": id(c)}


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
    return {"name": cls.__name__, "make": _maker(cls), "id": id(cls)}


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


def app_help():
    """The module's `help` string, shown by `wallaroo run APP.py --help`."""
    h = getattr(_app, "help", None)
    return h if isinstance(h, str) else None


def serde():
    """The app's top-level serialize/deserialize if it defines both, else pickle, as adapters."""
    ser = getattr(_app, "serialize", None)
    de = getattr(_app, "deserialize", None)
    if not (callable(ser) and callable(de)):
        ser, de = wallaroo.serialize, wallaroo.deserialize

    def pack(h):
        b = ser(_table[h])
        if not isinstance(b, (bytes, bytearray)):
            raise TypeError("serialize() must return bytes, got {0}".format(type(b).__name__))
        return bytes(b).decode("latin-1")

    def unpack(buf):
        return _put(de(buf.to_bytes()))
    return [pack, unpack]
