#!/usr/bin/env python3
"""Benchmark: bertjp's runtime tokenizer vs transformers' BertJapaneseTokenizer vs raw MeCab.

All three run on the same lines (the reference corpus of the fixtures, repeated to
``--mb`` MB), in the same process, interleaved over ``--rounds`` rounds; the table
gives each one's MB/s (median over rounds) and the ratios the issue asks for:
ours / transformers (target >= 2x) and ours / raw MeCab (target >= 70 %).

- raw MeCab: ``fugashi.GenericTagger("-d <unidic-lite> -r <mecabrc>").parse(line)``;
- ours: ``JapaneseTokenizer(vocab, subword).encode(line)`` (tokens and ids);
- transformers: ``BertJapaneseTokenizer(...).tokenize(line)`` then ``convert_tokens_to_ids``.

Usage: .venv/bin/python bench/tokenizer_bench.py [--mb 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "tests" / "fixtures" / "reference"


def corpus_lines(mb: float) -> list[str]:
    """Non-empty lines of the fixture corpus, repeated to about ``mb`` MB."""
    text = gzip.open(REF / "make_corpus_wiki" / "corpus.unidic_lite.txt.gz", "rt").read()
    base = [line for line in text.split("\n") if line]
    size = sum(len(line.encode()) for line in base)
    return base * max(1, round(mb * 1e6 / size))


def contenders(subword: str) -> dict:
    """name -> callable(line), each warmed up once."""
    import fugashi
    import unidic_lite
    from transformers import BertJapaneseTokenizer

    from bertjp.tokenization import JapaneseTokenizer

    vocab = REF / "vocab" / f"{subword}_unidic_lite" / "vocab.txt"
    raw = fugashi.GenericTagger(f"-d {unidic_lite.DICDIR} -r {unidic_lite.DICDIR}/mecabrc")
    ours = JapaneseTokenizer(vocab, subword=subword)
    hf = BertJapaneseTokenizer(str(vocab), do_lower_case=False, word_tokenizer_type="mecab",
                               subword_tokenizer_type=subword,
                               mecab_kwargs={"mecab_dic": "unidic_lite"})
    funcs = {"raw MeCab (fugashi parse)": raw.parse,
             "bertjp JapaneseTokenizer": ours.encode,
             "transformers BertJapaneseTokenizer":
                 lambda line: hf.convert_tokens_to_ids(hf.tokenize(line))}
    for f in funcs.values():
        f("準備のための一文です。")
    return funcs


def measure(funcs: dict, lines: list[str], rounds: int) -> dict[str, float]:
    """Median MB/s of each callable over the lines, rounds interleaved."""
    mb = sum(len(line.encode()) for line in lines) / 1e6
    rates = {name: [] for name in funcs}
    for _ in range(rounds):
        for name, f in funcs.items():
            start = time.perf_counter()
            for line in lines:
                f(line)
            rates[name].append(mb / (time.perf_counter() - start))
    return {name: statistics.median(r) for name, r in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=4, help="MB of text (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    args = parser.parse_args()
    lines = corpus_lines(args.mb)
    mb = sum(len(line.encode()) for line in lines) / 1e6
    print(f"{len(lines):,} lines, {mb:.1f} MB of Japanese Wikipedia text, {args.rounds} rounds")
    for subword in ("wordpiece", "character"):
        rates = measure(contenders(subword), lines, args.rounds)
        raw, ours, hf = rates.values()
        print(f"\n{subword}:")
        for name, rate in rates.items():
            print(f"  {name:36s} {rate:6.2f} MB/s")
        print(f"  ours / transformers: {ours / hf:.1f}x (target >= 2x); "
              f"ours / raw MeCab: {100 * ours / raw:.0f} % (target >= 70 %)")


if __name__ == "__main__":
    main()
