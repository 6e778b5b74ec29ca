"""The corpus text format and the CC-100 document reader.

The corpus format is the reference's: one sentence per line and one empty line
after each document. CC-100 (``ja.txt.xz``) has the same shape with paragraphs
for sentences; its lines are whitespace-normalised as ``merge_split_corpora.py``
does, and a document never continues across the end of a file.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Iterable, Iterator, Sequence

from bertjp.defaults import EXCERPT_CHARS
from bertjp.streams import LineTooLong
from bertjp.text import normalize_cc100_line

__all__ = [
    "BadLine",
    "Cc100Document",
    "ReferenceSplitter",
    "format_document",
    "group_cc100_documents",
    "iter_corpus_documents",
]


def format_document(sentences: Sequence[str]) -> str:
    """One document in the corpus format: a line per sentence, then an empty line."""
    return "".join(s + "\n" for s in sentences) + "\n"


def iter_corpus_documents(lines: Iterable[str]) -> Iterator[list[str]]:
    """Groups corpus-format lines (newlines removed) into documents.

    Consecutive empty lines end one document; a document without a final empty
    line still counts.
    """
    doc: list[str] = []
    for line in lines:
        if line.strip():
            doc.append(line)
        elif doc:
            yield doc
            doc = []
    if doc:
        yield doc


@dataclasses.dataclass(frozen=True)
class Cc100Document:
    """A CC-100 document.

    Attributes:
      ordinal: the document's position in its file (0-based), a stable id.
      first_line: the file line it starts on (1-based).
      lines: its normalised, non-empty lines.
    """

    ordinal: int
    first_line: int
    lines: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class BadLine:
    """A line that could not be read; it is left out of its document.

    Attributes:
      line: the file line (1-based).
      reason: ``invalid_utf8`` or ``line_too_long``.
      detail: a human-readable explanation.
      head: the line's first bytes.
    """

    line: int
    reason: str
    detail: str
    head: bytes


def group_cc100_documents(
    lines: Iterable[tuple[int, bytes | LineTooLong]],
) -> Iterator[Cc100Document | BadLine]:
    """Turns the numbered raw lines of one CC-100 file into documents.

    Each line is decoded as UTF-8, split at a lone ``\\r`` as universal newlines
    would, and normalised with :func:`bertjp.text.normalize_cc100_line`; a line that
    is empty after normalisation ends the current document.

    Yields:
      :class:`Cc100Document` in file order, and a :class:`BadLine` for every line
      that is not valid UTF-8 or is too long (the document goes on without it).
    """
    doc: list[str] = []
    first = 0
    ordinal = 0
    for lineno, raw in lines:
        if isinstance(raw, LineTooLong):
            yield BadLine(lineno, "line_too_long", f"{raw.size} bytes", raw.head)
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            detail = f"{err.reason} at byte {err.start}"
            yield BadLine(lineno, "invalid_utf8", detail, raw[:EXCERPT_CHARS])
            continue
        parts = text.removesuffix("\r").split("\r") if "\r" in text else (text,)
        for part in parts:
            normalized = normalize_cc100_line(part)
            if normalized:
                if not doc:
                    first = lineno
                doc.append(normalized)
            elif doc:
                yield Cc100Document(ordinal, first, tuple(doc))
                ordinal += 1
                doc = []
    if doc:
        yield Cc100Document(ordinal, first, tuple(doc))


class ReferenceSplitter:
    """The file choice of the reference's ``merge_split_corpora.py``, draw for draw.

    The reference seeds Python's ``random`` with 0, picks the first file with
    ``randint(1, N)`` used as a 0-based index (so the first document never goes to
    the first file, and ``N`` itself is out of range: it crashes), writes each
    normalised line to the current file and draws a new file with
    ``randrange(N)`` after every empty line.

    Args:
      num_files: N.
      seed: the seed (the reference's is 0).

    Raises:
      ValueError: the first draw is N, where the reference crashes (with seed 0:
        N = 2, 4, 7, 14, ...).
    """

    def __init__(self, num_files: int, seed: int = 0):
        self.num_files = num_files
        self._rng = random.Random(seed)
        first = self._rng.randint(1, num_files)
        if first == num_files:
            raise ValueError(
                f"merge_split_corpora.py crashes for N = {num_files} with seed {seed} (its "
                f"first draw randint(1, {num_files}) is {num_files}, used as a 0-based "
                "index); choose another N or seed, or leave out --reference-sharding"
            )
        self._current = first

    def assign(self, normalized_line: str) -> int:
        """The 0-based file the line is written to (an empty line ends a document)."""
        target = self._current
        if not normalized_line:
            self._current = self._rng.randrange(self.num_files)
        return target
