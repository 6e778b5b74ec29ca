"""The character alphabet of the vocabulary (recipe §5).

The reference's ``make_alphabet_from_unidic.py`` takes every character of every
surface in UniDic's ``lex.csv``, NFKC-normalises it, keeps it when that gives
one printable character, and writes the set in code-point order: 7,012
characters for UniDic 2.1.2. That set ships as package data, since ``lex.csv``
cannot be installed; :func:`alphabet_from_lex_csv` rebuilds it from a file.
"""

from __future__ import annotations

import csv
import importlib.resources
import unicodedata

__all__ = ["alphabet_from_lex_csv", "parse_alphabet", "unidic_lite_alphabet"]


def alphabet_from_lex_csv(path) -> list[str]:
    """The alphabet of a UniDic ``lex.csv``, as ``make_alphabet_from_unidic.py`` builds it.

    The surface is the first CSV column; an empty surface stands for ``"`` (how the
    double-quote entry parses); each character is NFKC-normalised and kept when the
    result is one printable character.

    Returns:
      The characters in code-point order.
    """
    chars = set()
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.reader(f):
            if not row:
                continue
            for ch in row[0] or '"':
                normalized = unicodedata.normalize("NFKC", ch)
                if len(normalized) == 1 and normalized.isprintable():
                    chars.add(normalized)
    return sorted(chars)


def unidic_lite_alphabet() -> list[str]:
    """The 7,012-character UniDic 2.1.2 alphabet of the released v3 vocabulary."""
    text = (importlib.resources.files("bertjp") / "data" / "unidic_lite_alphabet.txt").read_text(
        encoding="utf-8")
    return parse_alphabet(text)


def parse_alphabet(text: str) -> list[str]:
    """An alphabet file (one character per line, a line may be a single space).

    Raises:
      ValueError: a line is not exactly one character, or a character repeats.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    bad = [(i + 1, line) for i, line in enumerate(lines) if len(line) != 1]
    if bad:
        raise ValueError(f"alphabet lines must be one character each; line {bad[0][0]} is "
                         f"{bad[0][1]!r}")
    if len(set(lines)) != len(lines):
        raise ValueError("the alphabet repeats a character")
    return sorted(lines)
