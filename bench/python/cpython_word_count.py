"""
The Machida analogue for bench/python/word-count.bench.mjs: a hand-written CPython loop,
one thread, over the same sockets as the engine (listens on --in HOST:PORT for framed
messages, connects to --out HOST:PORT), running Wallaroo 0.5.4's word_count.py's own
functions (decoder, split, partition, count_word, encoder) on each message, with the
state partitions in a dict. Errors in user code drop that message, as in the engine.

    python3 cpython_word_count.py --in 127.0.0.1:7010 --out 127.0.0.1:7002
"""
import os
import socket
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "fixtures", "wallaroo-python", "word_count"))
import word_count as app  # noqa: E402


def addr(flag):
    h, p = sys.argv[sys.argv.index(flag) + 1].rsplit(":", 1)
    return h, int(p)


def main():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(addr("--in"))
    srv.listen(1)
    out = socket.create_connection(addr("--out"))
    print("ready", flush=True)
    decode, split, part = app.decoder.func, app.split.func, app.partition.func
    count, encode = app.count_word.func, app.encoder.func
    states = {}
    unpack = struct.Struct(">I").unpack_from
    while True:
        conn, _ = srv.accept()
        buf = b""
        while True:
            data = conn.recv(1 << 16)
            if not data:
                break
            buf += data
            pos, n = 0, len(buf)
            outs = []
            while n - pos >= 4:
                size = unpack(buf, pos)[0]
                if n - pos - 4 < size:
                    break
                payload = buf[pos + 4:pos + 4 + size]
                pos += 4 + size
                try:
                    words = split(decode(payload))
                except Exception:
                    continue
                for w in words:
                    try:
                        k = part(w)
                        st = states.get(k)
                        if st is None:
                            st = states[k] = app.WordTotals()
                        r, _ = count(w, st)
                        if r is not None:
                            outs.append(encode(r))
                    except Exception:
                        pass
            buf = buf[pos:]
            if outs:
                out.sendall(b"".join(outs))
        conn.close()


if __name__ == "__main__":
    main()
