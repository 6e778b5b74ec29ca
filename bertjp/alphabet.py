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

__all__ = ["alphabet_from_lex_csv", "unidic_lite_alphabet"]


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
    return text.split("\n")[:-1]
