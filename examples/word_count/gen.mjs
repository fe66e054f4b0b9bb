#!/usr/bin/env node
// Deterministic generator of English-like text for the word_count example.
//
//   node examples/word_count/gen.mjs --lines 300000 --out /tmp/words.txt
//   node examples/word_count/gen.mjs --lines 300 --out examples/word_count/data.txt   (the committed data)
//
// Options: --lines N (default 300), --seed S (default 1), --out FILE (default stdout).
// The same N and seed always give the same bytes. No line is empty. The text is
// made up from a small vocabulary (no third-party text), with capitals,
// punctuation, quotes, parentheses, contractions, hyphenated words, numbers and
// the odd double space, so that Wallaroo's lowercase/strip/split rules matter.
import { createWriteStream } from "node:fs";

function parseArgs(argv) {
  const o = { lines: 300, seed: 1, out: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === "--lines" || a === "-n") {
      o.lines = Number(v);
      i++;
    } else if (a === "--seed") {
      o.seed = Number(v);
      i++;
    } else if (a === "--out" || a === "-o") {
      o.out = v;
      i++;
    } else if (a === "--help" || a === "-h") {
      console.log("usage: gen.mjs [--lines N] [--seed S] [--out FILE]");
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(o.lines) || o.lines < 0) throw new Error("--lines must be a non-negative integer");
  return o;
}

// mulberry32: small, fast, deterministic
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const W = (s) => s.trim().split(/\s+/);
const DET = W("the the the a a an every some no this that each our their my his her one another");
const ADJ = W(`old young quiet loud bright dark small large quick slow gentle brave tired happy
  sad clever green grey golden silver cold warm early late empty full strange plain
  well-known long-term narrow wide wild calm busy honest patient curious distant hidden
  simple heavy light ancient modern northern southern`);
const NOUN = W(`river mountain village city road house garden window door table letter book
  farmer teacher sailor miller baker child dog cat horse bird fox owl wolf tree forest
  field hill valley lake sea ship boat bridge tower market church school clock lamp
  candle storm wind rain snow sun moon star morning evening night winter summer spring
  autumn story song word answer question friend neighbour stranger king queen captain
  traveller engine wheel stone bread apple`);
const NAME = W(
  "Anna Ben Clara David Emma Felix Grace Henry Iris Jack Kate Leo Mary Noah Olive Peter Rose Sam Tom Una Victor Will",
);
const VERB = W(`saw found kept carried opened closed followed watched crossed climbed painted
  built mended answered called remembered forgot wanted needed loved heard visited
  left reached passed counted sold bought borrowed carved washed lifted`);
const IVERB = W("slept waited laughed walked wandered sang rested listened smiled shouted worked ran returned stayed");
const ADV = W("slowly quickly quietly early late often never always together alone again suddenly carefully gladly");
const PREP = W("over under near beside behind across through into along past toward around beyond");
const CONJ = W("and but or yet so while because although");
const SAY = W("said asked whispered replied cried answered");
const EXTRA = [
  "don't",
  "can't",
  "it's",
  "o'clock",
  "wasn't",
  "we'll",
  "1776",
  "42",
  "3.14",
  "No.",
  "etc.",
  "e-mail",
  "well--",
  "U.S.",
  "#1",
  "100%",
  "A.M.",
];

function makeSentence(r) {
  const pick = (arr) => arr[Math.floor(r() * arr.length)];
  const np = () => {
    if (r() < 0.15) return pick(NAME);
    const parts = [pick(DET)];
    if (r() < 0.5) parts.push(pick(ADJ));
    parts.push(pick(NOUN));
    if (parts[0] === "an" || parts[0] === "a") parts[0] = /^[aeiou]/.test(parts[1]) ? "an" : "a";
    return parts.join(" ");
  };
  const clause = () => {
    const w = [np()];
    if (r() < 0.25) w.push(pick(ADV));
    if (r() < 0.6) {
      w.push(pick(VERB), np());
    } else {
      w.push(pick(IVERB));
    }
    if (r() < 0.5) w.push(pick(PREP), np());
    if (r() < 0.12) w.push(pick(EXTRA));
    return w.join(" ");
  };
  let s = clause();
  if (r() < 0.35) s += (r() < 0.5 ? ", " : " ") + pick(CONJ) + " " + clause();
  s = s[0].toUpperCase() + s.slice(1);
  const end = r();
  if (end < 0.12) {
    // a quotation: "Xxx," Anna said.
    s = `"${s}," ${pick(NAME)} ${pick(SAY)}.`;
  } else if (end < 0.2) {
    s = `(${s}.)`;
  } else if (end < 0.3) {
    s += "?";
  } else if (end < 0.36) {
    s += "!";
  } else if (end < 0.42) {
    s += ";";
  } else if (end < 0.46) {
    s += " --";
  } else {
    s += ".";
  }
  if (r() < 0.05) s = s.toUpperCase();
  return s;
}

function makeLine(r) {
  const n = 1 + Math.floor(r() * 3);
  const parts = [];
  for (let i = 0; i < n; i++) parts.push(makeSentence(r));
  return parts.join(r() < 0.06 ? "  " : " ");
}

export function* generateLines(count, seed = 1) {
  const r = rng(seed);
  for (let i = 0; i < count; i++) yield makeLine(r);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const out = o.out ? createWriteStream(o.out) : process.stdout;
  let chunk = [];
  for (const line of generateLines(o.lines, o.seed)) {
    chunk.push(line);
    if (chunk.length >= 4096) {
      if (!out.write(chunk.join("\n") + "\n")) await new Promise((res) => out.once("drain", res));
      chunk = [];
    }
  }
  if (chunk.length) out.write(chunk.join("\n") + "\n");
  if (o.out) await new Promise((res, rej) => out.end((e) => (e ? rej(e) : res())));
}

import { pathToFileURL } from "node:url";
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((e) => {
    console.error(e.message);
    process.exit(1);
  });
}
