"""
Tests of app.py's functions under CPython (the decorated functions stay callable):
    npm test        # python3 -m unittest test_app.py
End to end, run the app with `npm start` and send data/words.txt.
"""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
# the wallaroo Python module ships inside the wallaroo npm package
sys.path.insert(0, os.path.join(HERE, "node_modules", "wallaroo", "python"))

import app  # noqa: E402


class AppTest(unittest.TestCase):
    def test_split_lowercases_and_strips_punctuation(self):
        self.assertEqual(app.split("The dog sleeps; the fox."), ["the", "dog", "sleeps", "the", "fox"])
        self.assertIsNone(app.split("   "))

    def test_counts_per_word(self):
        total = app.WordTotal()
        app.count("fox", total)
        out, save = app.count("fox", total)
        self.assertEqual((out.word, out.count, save), ("fox", 2, True))
        self.assertEqual(app.encode(out), b"fox => 2\n")

    def test_setup_reads_the_addresses(self):
        built = app.application_setup(["app.py", "--in", "127.0.0.1:7010", "--out", "127.0.0.1:7002"])
        self.assertEqual(built.name, "word counts")


if __name__ == "__main__":
    unittest.main()
