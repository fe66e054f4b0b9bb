"""
A single-threaded reference of the Wallaroo 0.5 Python API, under CPython, for
tests only (never in the engine's run path): it runs an application's pipelines
over given inputs one message at a time, as Machida ran them on one worker, and
writes every sink's output bytes to stdout in the order produced.

    python3 wallaroo_reference.py APP.py --feed P:KIND:FILE [--feed ...] -- [app args]

Each --feed sends the messages of FILE into the source of pipeline P (0-based, in
declaration order), feeds in the order given. KIND says how FILE splits into
payloads: `lines` (one per line, no trailing empty line, as `wallaroo send --file`),
`framed` (length-prefixed with the decoder's header, as a Giles .msg file), or
`records=N` (fixed-size records of N bytes). The engine's own run uses the same
inputs; the tests compare the two outputs.

Semantics (those of the engine and Machida): a decoder, computation or
partition result of None sends nothing on; a _multi computation's list elements
go on one by one (None elements skipped); state lives per (state name, key),
created on first use from the state class; an exception in user code drops that
message alone (counted, printed on stderr with the traceback's last line).
The number of such errors goes to stderr as the last line: `errors N`.
"""

import importlib
import os
import struct
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.join(HERE, "..", "..", "python"))  # the package's wallaroo module


def payloads(kind, path, decoder):
    with open(path, "rb") as f:
        data = f.read()
    if kind == "lines":
        ls = data.split(b"\n")
        if ls and ls[-1] == b"":
            ls.pop()
        return ls
    if kind == "framed":
        out, pos, h = [], 0, decoder.header_length
        while pos + h <= len(data):
            n = struct.unpack(decoder.length_fmt, data[pos:pos + h])[0]
            out.append(data[pos + h:pos + h + n])
            pos += h + n
        return out
    if kind.startswith("records="):
        n = int(kind.split("=", 1)[1])
        return [data[i:i + n] for i in range(0, len(data) - n + 1, n)]
    raise SystemExit("unknown feed kind " + kind)


def pipelines(app):
    """The application's pipelines as (source config, [steps], [sink configs]) from build()'s record."""
    out = []
    for a in app.actions:
        if a[0] == "new_pipeline":
            out.append((a[2], [], []))
        elif a[0] == "to_sink":
            out[-1][2].append(a[1])
        elif a[0] == "to_sinks":
            out[-1][2].extend(a[1])
        elif a[0] != "done":
            out[-1][1].append(a)
    return out


def main():
    argv = sys.argv[1:]
    app_path = argv[0]
    sep = argv.index("--") if "--" in argv else len(argv)
    feeds = [argv[i + 1] for i in range(1, sep) if argv[i] == "--feed"]
    app_args = argv[sep + 1:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(app_path)))
    mod = importlib.import_module(os.path.basename(app_path)[:-3])
    app = mod.application_setup([app_path] + app_args)
    pls = pipelines(app)
    states = {}
    errors = [0]
    out = sys.stdout.buffer

    def failed():
        errors[0] += 1
        sys.stderr.write(traceback.format_exc().strip().splitlines()[-1] + "\n")

    def run(steps, sinks, i, x):
        while i < len(steps):
            step = steps[i]
            op, c = step[0], step[1]
            if op in ("to", "to_parallel"):
                r = c.func(x)
            else:
                cls, name = step[2], step[3]
                key = step[4].func(x) if op != "to_stateful" else None
                st = states.get((name, key))
                if st is None:
                    st = states[(name, key)] = cls()
                r, _save = c.func(x, st)
            if r is None:
                return
            if c.multi:
                for e in r:
                    if e is None:
                        continue
                    try:
                        run(steps, sinks, i + 1, e)
                    except Exception:
                        failed()
                return
            x = r
            i += 1
        for s in sinks:
            b = s.encoder.func(x)
            if isinstance(s, __import__("wallaroo").KafkaSinkConfig):
                b = b[0]
            out.write(b.encode("utf-8") if isinstance(b, str) else bytes(b))

    for feed in feeds:
        p, kind, path = feed.split(":", 2)
        src, steps, sinks = pls[int(p)]
        for payload in payloads(kind, path, src.decoder):
            try:
                x = src.decoder.func(payload)
                if x is not None:
                    run(steps, sinks, 0, x)
            except Exception:
                failed()
    out.flush()
    sys.stderr.write("errors {0}\n".format(errors[0]))


if __name__ == "__main__":
    main()
