"""
A Wallaroo application in Python: counts words. Each line that arrives on the
TCP source is split into words; each word's count is kept in the state
partition "word totals" (one WordTotal per word, created on first use), and
every occurrence sends `word => count` to the TCP sink.

    npm start                                  # wallaroo run app.py --in 127.0.0.1:7010 --out 127.0.0.1:7002
    npx wallaroo send --port 7010 --file data/words.txt
"""
import wallaroo


def application_setup(args):
    in_host, in_port = wallaroo.tcp_parse_input_addrs(args)[0]
    out_host, out_port = wallaroo.tcp_parse_output_addrs(args)[0]
    ab = wallaroo.ApplicationBuilder("word counts")
    ab.new_pipeline("count words", wallaroo.TCPSourceConfig(in_host, in_port, decode))
    ab.to_parallel(split)
    ab.to_state_partition(count, WordTotal, "word totals", by_word)
    ab.to_sink(wallaroo.TCPSinkConfig(out_host, out_port, encode))
    return ab.build()


class WordTotal(object):
    def __init__(self):
        self.count = 0


class WordCount(object):
    def __init__(self, word, count):
        self.word = word
        self.count = count


@wallaroo.decoder(header_length=4, length_fmt=">I")
def decode(bs):
    return bs.decode("utf-8")


@wallaroo.computation_multi(name="split")
def split(line):
    # None or an empty list sends nothing on
    return [w.strip(".,;:!?\"'()").lower() for w in line.split()] or None


@wallaroo.partition
def by_word(word):
    return word


@wallaroo.state_computation(name="count")
def count(word, total):
    total.count += 1
    return (WordCount(word, total.count), True)  # True: save the state (resilience)


@wallaroo.encoder
def encode(wc):
    return ("%s => %d\n" % (wc.word, wc.count)).encode("utf-8")
