"""Character offsets of tokens in the original text (for JSQuAD and other span tasks).

:meth:`bertjp.tokenization.JapaneseTokenizer.tokenize_with_offsets` gives each token an
:class:`OffsetToken`: its token and id (those of ``encode``) and the span
``[start, end)`` of the **original** text it came from, before lowercasing, NFKC,
and MeCab's dropping of whitespace. A predicted token range turns back into text
with :func:`token_span` and :func:`span_text`, i.e. ``text[start:end]``: a substring
of the original context, full-width characters and inner spaces included.

Spans are non-empty and never decrease (neither ``start`` nor ``end``). Two tokens
share characters only where normalisation merged or expanded them: a WordPiece
boundary inside ``㍻`` (NFKC ``平成``) gives both pieces the whole ``㍻``; ``ｶﾞ``
(two characters, NFKC ``ガ``) is one character of the normalised text, so its
token spans both.
"""

from __future__ import annotations

import bisect
import dataclasses
import unicodedata
from typing import Sequence

__all__ = ["OffsetToken", "nfkc_alignment", "span_text", "token_span", "tokens_covering"]


@dataclasses.dataclass(frozen=True, slots=True)
class OffsetToken:
    """One token with the span of the original text it came from.

    Attributes:
      token: the token, as ``tokenize`` gives it (``##`` continuations, ``[UNK]``).
      id: its id, as ``encode`` gives it.
      start: the first character of the span in the original text.
      end: one past its last character: the token came from ``text[start:end]``.
    """

    token: str
    id: int
    start: int
    end: int


def span_text(text: str, start: int, end: int) -> str:
    """What the character span ``[start, end)`` of ``text`` turns back into: ``text[start:end]``.

    Raises:
      ValueError: the span is not ``0 <= start <= end <= len(text)`` (slicing would
        silently clip it).
    """
    if not 0 <= start <= end <= len(text):
        raise ValueError(f"span [{start}, {end}) is not inside a text of {len(text)} characters")
    return text[start:end]


def token_span(tokens: Sequence[OffsetToken], first: int, last: int) -> tuple[int, int]:
    """The character span ``[start, end)`` of the tokens ``first`` to ``last`` (inclusive),
    e.g. a predicted answer; :func:`span_text` turns it into text."""
    if not 0 <= first <= last < len(tokens):
        raise ValueError(f"token range [{first}, {last}] is not inside {len(tokens)} tokens")
    return (min(t.start for t in tokens[first:last + 1]),
            max(t.end for t in tokens[first:last + 1]))


def tokens_covering(tokens: Sequence[OffsetToken], start: int,
                    end: int) -> tuple[int, int] | None:
    """The first and last index of the tokens that overlap the characters ``[start, end)``
    (e.g. a gold answer), or ``None`` where no token does (whitespace only).

    The tokens' text (:func:`token_span`) can be longer than the span where a span
    boundary falls inside a token (inside a MeCab word or a WordPiece piece).
    """
    if start >= end:
        return None
    ends = [t.end for t in tokens]
    first = bisect.bisect_right(ends, start)  # the first token ending after start
    last = bisect.bisect_left([t.start for t in tokens], end) - 1  # the last starting before end
    return (first, last) if first <= last else None


def nfkc_alignment(text: str) -> tuple[str, list[int], list[int]]:
    """NFKC of ``text`` and, for each of its characters, the span of ``text`` it came from.

    Returns ``(normalized, starts, ends)``: ``normalized[k]`` comes from
    ``text[starts[k]:ends[k]]``. Usually each character normalises on its own
    (``①`` → ``1``, ``㍻`` → ``平成``: both characters come from ``㍻``). Where NFKC
    composes characters (``ｶﾞ`` → ``ガ``, ``か`` + U+3099 → ``が``, Hangul jamo) or
    reorders combining marks, the characters are grouped: a group ends before a
    non-combining character whose NFKC does not interact with the group's, and all
    of a group's output characters get the group's span.
    """
    normalized = unicodedata.normalize("NFKC", text)
    n = len(text)
    if normalized == text:
        return normalized, list(range(n)), list(range(1, n + 1))
    pieces = [unicodedata.normalize("NFKC", ch) for ch in text]
    starts: list[int] = []
    ends: list[int] = []
    if "".join(pieces) == normalized:  # no composition across characters
        for i, piece in enumerate(pieces):
            starts += [i] * len(piece)
            ends += [i + 1] * len(piece)
        return normalized, starts, ends
    i = p = 0
    while i < n:
        j = i + 1
        piece = pieces[i]
        while j < n:
            if (not unicodedata.combining(text[j]) and normalized.startswith(piece, p)
                    and unicodedata.normalize("NFKC", text[i:j + 1]) == piece + pieces[j]):
                break
            j += 1
            piece = unicodedata.normalize("NFKC", text[i:j])
        if j == n:  # the rest (its NFKC is the rest of the output)
            piece = normalized[p:]
        starts += [i] * len(piece)
        ends += [j] * len(piece)
        p += len(piece)
        i = j
    return normalized, starts, ends
