"""Sentence splitting with MeCab, as the reference's ``MeCabSentenceSplitter``.

A sentence ends after a MeCab token whose feature string contains both ``記号``
and ``句点`` (recipe §2.3); whatever follows the last such token is the last
sentence. Which characters qualify depends on the dictionary: with unidic-lite
``。 . ! ?`` do, with IPADIC only ``。``.

The reference reads MeCab's default output line by line, takes everything after
the first tab as the feature string and locates every token in the text with a
running ``str.index``. We ask MeCab for the same default output with each
token's end byte offset in front (``%pe``) and look only at the lines that
mention ``句点``: the same sentences, with far less Python work per token.
"""

from __future__ import annotations

import collections
from typing import Iterable, Iterator

from bertjp.mecab import MAX_PARSE_CHARS, MecabDictionary, make_tagger, safe_pieces

__all__ = ["SentenceFilter", "SentenceSplitter"]



class SentenceSplitter:
    """Splits one line of text into sentences.

    Picklable: the MeCab tagger is dropped when pickled and rebuilt on first use.

    A text longer than ``max_parse_chars`` is parsed in pieces (see
    :func:`bertjp.mecab.safe_pieces`): MeCab crashes on some multi-megabyte inputs.

    Args:
      dictionary: the MeCab dictionary; unidic-lite by default.
      max_parse_chars: the longest text handed to MeCab at once.
    """

    def __init__(self, dictionary: MecabDictionary | None = None,
                 max_parse_chars: int = MAX_PARSE_CHARS):
        self.dictionary = dictionary or MecabDictionary()
        self.max_parse_chars = max_parse_chars
        self._tagger = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_tagger"] = None
        return state

    def _get_tagger(self):
        if self._tagger is None:
            self._tagger = make_tagger(self.dictionary, prefix=r"%pe\t")
        return self._tagger

    def _ends(self, piece: str) -> Iterator[int]:
        """Byte offsets in ``piece`` just after each sentence-ending token."""
        out = self._get_tagger().parse(piece)
        pos = out.find("句点")
        while pos != -1:
            line_start = out.rfind("\n", 0, pos) + 1
            line_end = out.find("\n", pos)
            # "<end offset>\t<surface>\t<features>": the reference's feature string
            # is everything after the surface.
            end, _, rest = out[line_start:line_end].partition("\t")
            features = rest.partition("\t")[2]
            if "記号" in features and "句点" in features:
                yield int(end)
            pos = out.find("句点", line_end)

    def split(self, text: str) -> list[str]:
        """Returns the sentences of ``text``, unstripped, in order; ``[]`` for ``""``."""
        if not text:
            return []
        data = text.encode("utf-8")
        sentences = []
        start = base = 0
        for piece in safe_pieces(text, self.max_parse_chars):
            for end in self._ends(piece):
                sentences.append(data[start : base + end].decode("utf-8"))
                start = base + end
            base += len(piece.encode("utf-8"))
        if start < len(data):
            sentences.append(data[start:].decode("utf-8"))
        return sentences


class SentenceFilter:
    """Keeps stripped sentences of ``min_length``..``max_length`` code points.

    Sentences containing the literal ``\\displaystyle`` (TeX residue) are dropped,
    as in the reference.

    Args:
      min_length: shortest kept sentence, in code points (reference: 10).
      max_length: longest kept sentence, in code points (reference README: 200).
    """

    REASONS = ("too_short", "too_long", "displaystyle")

    def __init__(self, min_length: int = 10, max_length: int = 200):
        if min_length < 0 or max_length < min_length:
            raise ValueError(
                f"sentence lengths must satisfy 0 <= min <= max, got {min_length}, {max_length}"
            )
        self.min_length = min_length
        self.max_length = max_length

    def __call__(self, sentences: Iterable[str]) -> tuple[list[str], collections.Counter]:
        """Returns the kept sentences and a count of the dropped ones by reason."""
        kept = []
        dropped = collections.Counter()
        for sentence in sentences:
            sentence = sentence.strip()
            if len(sentence) < self.min_length:
                dropped["too_short"] += 1
            elif len(sentence) > self.max_length:
                dropped["too_long"] += 1
            elif "\\displaystyle" in sentence:
                dropped["displaystyle"] += 1
            else:
                kept.append(sentence)
        return kept, dropped
