"""The corpus text format and the CC-100 document reader.

The corpus format is the reference's: one sentence per line and one empty line
after each document. CC-100 (``ja.txt.xz``) has the same shape with paragraphs
for sentences; its lines are whitespace-normalised as ``merge_split_corpora.py``
does, and a document never continues across the end of a file.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Iterator, Sequence

from bertjp.streams import LineTooLong
from bertjp.text import normalize_cc100_line

__all__ = [
    "BadLine",
    "Cc100Document",
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
            yield BadLine(lineno, "invalid_utf8", detail, raw[:200])
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
