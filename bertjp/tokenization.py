"""The runtime tokenizer: MeCab words, then WordPiece or characters.

It reproduces, token for token and id for id, the tokenizer the reference's
``create_pretraining_data.py`` builds (cl-tohoku ``tokenization.BertJapaneseTokenizer``
on transformers 4.30, recipe §7):

1. with ``do_lower_case``, the line is lowercased except where it spells a special
   token (``[MASK]`` stays, but is not special: see 3);
2. NFKC, then MeCab; each surface is a word (MeCab drops whitespace), lowercased
   again with ``do_lower_case``; a NUL character is read as a space (a word boundary:
   the reference's MeCab silently stops reading at it, see :mod:`bertjp.mecab`);
3. each word is split on whitespace (``str.split``) and then
   - ``wordpiece``: greedy longest-match-first with ``##`` continuations; a word of
     more than ``max_input_chars_per_word`` characters, or with a piece that no
     vocabulary entry matches, becomes one ``[UNK]``;
   - ``character``: NFKC, then each character, ``##``-prefixed after the first, or
     ``[UNK]`` when the bare character is not in the vocabulary; the ``##`` only
     marks the word for whole-word masking: ids are the bare characters'.
   Literal ``[MASK]``, ``[SEP]``... in the text are plain text (as in the reference).

Offsets: :meth:`JapaneseTokenizer.tokenize_with_offsets` gives the same tokens and ids
with each token's character span in the original text (:mod:`bertjp.offsets`), on a
separate path that aligns the lowercasing, NFKC and MeCab's dropped whitespace.

Speed: MeCab prints the surfaces only, and a bounded cache maps each distinct
word to its pieces and ids, so most words cost one dictionary lookup; cache
misses go to the ``tokenizers`` Rust WordPiece model.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable

from bertjp.mecab import MAX_PARSE_CHARS, NUL, MecabDictionary, make_tagger, safe_pieces
from bertjp.offsets import OffsetToken, nfkc_alignment
from bertjp.vocab_files import read_vocab

__all__ = ["SPECIAL_TOKENS", "JapaneseTokenizer", "OffsetToken", "load_vocab"]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_SPECIAL_OR_TEXT = re.compile(
    "(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + r")|(.+?)", re.DOTALL)
_CACHE_SIZE = 1 << 18
_Word = tuple[tuple[str, ...], tuple[int, ...], tuple[int, ...]]  # tokens, ids, codes


def load_vocab(path) -> list[str]:
    """The tokens of a local ``vocab.txt`` (or tokenizer directory), one per line, in id
    order: :func:`bertjp.vocab_files.read_vocab`."""
    return read_vocab(str(path))


def _lower_except_special(text: str) -> str:
    return _SPECIAL_OR_TEXT.sub(lambda m: m.group(1) or m.group(2).lower(), text)


def _parts(word: str) -> list[tuple[str, int]]:
    """``word.split()`` with each part's position in ``word``."""
    parts = word.split()
    if len(parts) == 1 and len(parts[0]) == len(word):
        return [(word, 0)]
    out, start = [], None
    for k, ch in enumerate(word + " "):
        if ch.isspace():
            if start is not None:
                out.append((word[start:k], start))
            start = None
        elif start is None:
            start = k
    return out


class JapaneseTokenizer:
    """MeCab + WordPiece (or character) tokenizer with the reference's semantics.

    Picklable: the MeCab tagger and the Rust model are rebuilt after unpickling.

    Args:
      vocab: the tokens in id order, or a path to a ``vocab.txt``.
      subword: ``"wordpiece"`` or ``"character"``.
      do_lower_case: lowercase as the reference's ``--do_lower_case`` does.
      dictionary: the MeCab dictionary (unidic-lite by default, as the reference).
      max_input_chars_per_word: longer words become ``[UNK]`` (wordpiece).
      unk_token: the unknown token.
    """

    def __init__(self, vocab, subword: str = "wordpiece", do_lower_case: bool = False,
                 dictionary: MecabDictionary | None = None,
                 max_input_chars_per_word: int = 100, unk_token: str = "[UNK]"):
        if subword not in ("wordpiece", "character"):
            raise ValueError(f"subword must be 'wordpiece' or 'character', got {subword!r}")
        self.vocab = load_vocab(vocab) if not isinstance(vocab, (list, tuple)) else list(vocab)
        self.subword = subword
        self.do_lower_case = do_lower_case
        self.dictionary = dictionary or MecabDictionary()
        self.max_input_chars_per_word = max_input_chars_per_word
        self.unk_token = unk_token
        self.ids = {token: i for i, token in enumerate(self.vocab)}
        if unk_token not in self.ids:
            raise ValueError(f"the vocabulary has no {unk_token!r}")
        self.unk_id = self.ids[unk_token]
        self._tagger = self._model = None
        self._cache: dict[str, _Word] = {}
        self._span_cache: dict[str, tuple[tuple[str, int, int, int], ...]] = {}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_tagger=None, _model=None, _cache={}, _span_cache={}, ids=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_span_cache", {})  # pickled before offsets existed
        self.ids = {token: i for i, token in enumerate(self.vocab)}

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def unk_code(self) -> int:
        """The code of ``[UNK]`` (never a continuation), to count unknown tokens in codes."""
        return self.unk_id << 1

    def words(self, text: str) -> list[str]:
        """The MeCab words of ``text`` after lowercasing and NFKC, as the reference (a NUL
        separates words, where the reference's MeCab would stop reading)."""
        if self.do_lower_case:
            text = _lower_except_special(text)
        text = unicodedata.normalize("NFKC", text)
        if not text:
            return []
        words = self._surfaces(text)
        if self.do_lower_case:
            words = [w if w in SPECIAL_TOKENS else w.lower() for w in words]
        return words

    def _surfaces(self, text: str) -> list[str]:
        """MeCab's surfaces of the normalised ``text``, in order (whitespace dropped)."""
        if self._tagger is None:
            self._tagger = make_tagger(self.dictionary, node_format=r"%m\n")
        # A newline would end a surface early; MeCab skips whitespace anyway.
        text = text.replace("\n", " ").replace("\r", " ")
        words = []
        for piece in safe_pieces(text, MAX_PARSE_CHARS):
            out = self._tagger.parse(piece)
            words += out.split("\n")[:-1]  # the last line is "EOS"
        return words

    def encode_words(self, words: Iterable[str]) -> list[_Word]:
        """Each word's ``(tokens, ids, codes)``; a word may give no token (whitespace).

        A token's *code* is ``id << 1 | continuation``: its id and whether it continues
        a word (a ``##`` token), the input of :mod:`bertjp.instances`."""
        cache = self._cache
        out = []
        for word in words:
            hit = cache.get(word)
            if hit is None:
                hit = self._encode_word(word)
                if len(cache) >= _CACHE_SIZE:
                    cache.clear()
                cache[word] = hit
            out.append(hit)
        return out

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` (no ``[CLS]``/``[SEP]`` added)."""
        return [t for tokens, _, _ in self.encode_words(self.words(text)) for t in tokens]

    def encode(self, text: str) -> tuple[list[str], list[int]]:
        """``(tokens, ids)`` of ``text``."""
        tokens, ids = [], []
        for word_tokens, word_ids, _ in self.encode_words(self.words(text)):
            tokens += word_tokens
            ids += word_ids
        return tokens, ids

    def token_codes(self, text: str) -> list[int]:
        """The tokens of ``text`` as codes ``id << 1 | continuation`` (see ``encode_words``)."""
        return [c for _, _, codes in self.encode_words(self.words(text)) for c in codes]

    def tokenize_with_offsets(self, text: str) -> list[OffsetToken]:
        """The tokens of ``text`` with their ids and the character spans they came from.

        Tokens and ids are exactly those of :meth:`encode`; each token's ``[start, end)``
        indexes ``text`` itself, before lowercasing and NFKC (``text[start:end]`` is what
        a predicted span turns back into: :mod:`bertjp.offsets`). A WordPiece piece or a
        character token covers the characters it was made of; a piece that begins or
        ends inside a character NFKC expanded (``㍻`` → ``平成``) gets that whole
        character; ``[UNK]`` gets its word's span. A separate, slower path than
        :meth:`encode` (it aligns the normalisation character by character).
        """
        starts, ends, normalized = self._normalized_origins(text)
        if not normalized:
            return []
        spaced = normalized.replace("\n", " ").replace("\r", " ").replace(NUL, " ")
        tokens_out: list[OffsetToken] = []
        cache = self._span_cache
        pos = 0
        for surface in self._surfaces(normalized):
            at = spaced.find(surface, pos)
            if at < 0 or spaced[pos:at].strip(" \t\v"):  # MeCab skips only these
                raise RuntimeError(f"cannot align MeCab's word {surface!r} at character {pos}")
            pos = at + len(surface)
            pieces = cache.get(surface)
            if pieces is None:
                pieces = self._surface_pieces(surface)
                if len(cache) >= _CACHE_SIZE:
                    cache.clear()
                cache[surface] = pieces
            tokens_out += [OffsetToken(token, token_id, starts[at + a], ends[at + b])
                           for token, token_id, a, b in pieces]
        return tokens_out

    def _surface_pieces(self, surface: str) -> tuple[tuple[str, int, int, int], ...]:
        """The tokens of one MeCab surface as ``(token, id, first, last)``: the first and
        last character of the surface each token was made of."""
        word = surface
        if self.do_lower_case and surface not in SPECIAL_TOKENS:
            word = surface.lower()
        # Where each character of the word is in the surface (lowercasing can
        # lengthen: U+0130 becomes i + U+0307).
        first_of = last_of = None
        if len(word) != len(surface):
            first_of = last_of = [k for k, ch in enumerate(surface) for _ in ch.lower()]
            if len(first_of) != len(word):  # not seen: then every token gets the surface
                first_of, last_of = [0] * len(word), [len(surface) - 1] * len(word)
        out = []
        for part, offset in _parts(word):
            [(tokens, ids, _)] = self.encode_words([part])
            for (a, b), token, token_id in zip(self._piece_ranges(part, tokens), tokens, ids,
                                               strict=True):
                a += offset
                b += offset - 1  # the last character
                if first_of is not None:
                    a, b = first_of[a], last_of[b]
                out.append((token, token_id, a, b))
        return tuple(out)

    def _normalized_origins(self, text: str) -> tuple[list[int], list[int], str]:
        """The text as MeCab reads it (lowercased, NFKC) and, for each of its characters,
        the span of ``text`` it came from."""
        lowered, origin = text, None
        if self.do_lower_case:
            lowered = _lower_except_special(text)
            if len(lowered) != len(text):  # each character lowers on its own
                origin = []
                for m in _SPECIAL_OR_TEXT.finditer(text):
                    size = len(m.group(1) or m.group(2).lower())
                    origin += range(m.start(), m.end()) if m.group(1) else [m.start()] * size
        normalized, starts, ends = nfkc_alignment(lowered)
        if origin is not None:
            starts = [origin[s] for s in starts]
            ends = [origin[e - 1] + 1 for e in ends]
        return starts, ends, normalized

    def _piece_ranges(self, part: str, tokens: tuple[str, ...]) -> list[tuple[int, int]]:
        """The characters ``[a, b)`` of ``part`` (a word without whitespace) each of its
        tokens was made of; the whole part where that cannot be told (``[UNK]``)."""
        whole = [(0, len(part))] * len(tokens)
        if self.subword == "character":  # one token per character of NFKC(part)
            normalized, starts, ends = nfkc_alignment(part)
            if len(normalized) != len(tokens):
                return whole
            return list(zip(starts, ends, strict=True))
        ranges, pos = [], 0
        for k, token in enumerate(tokens):
            piece = token[2:] if k and token.startswith("##") else token
            if not piece or not part.startswith(piece, pos):
                return whole
            ranges.append((pos, pos + len(piece)))
            pos += len(piece)
        return ranges if pos == len(part) else whole

    def code_of(self, token: str) -> int:
        """The code of one vocabulary token (``[CLS]``, ``[SEP]``...)."""
        return self.convert_tokens_to_ids([token])[0] << 1 | token.startswith("##")

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        """Ids of tokens; with the character vocabulary a ``##`` prefix is ignored."""
        ids, unk = self.ids, self.unk_id
        if self.subword == "character":
            return [ids.get(t[2:] if t.startswith("##") else t, unk) for t in tokens]
        return [ids.get(t, unk) for t in tokens]

    def _encode_word(self, word: str) -> _Word:
        tokens: list[str] = []
        for part in word.split():
            tokens += (self._characters(part) if self.subword == "character"
                       else self._wordpieces(part))
        ids = tuple(self.convert_tokens_to_ids(tokens))
        codes = tuple(i << 1 | t.startswith("##") for t, i in zip(tokens, ids, strict=True))
        return tuple(tokens), ids, codes

    def _characters(self, word: str) -> list[str]:
        word = unicodedata.normalize("NFKC", word)
        return [self.unk_token if ch not in self.ids else (ch if i == 0 else "##" + ch)
                for i, ch in enumerate(word)]

    def _wordpieces(self, word: str) -> list[str]:
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        if self._model is None:
            from tokenizers.models import WordPiece  # Rust; built where it is used

            self._model = WordPiece(self.ids, unk_token=self.unk_token,
                                    max_input_chars_per_word=self.max_input_chars_per_word,
                                    continuing_subword_prefix="##")
        return [token.value for token in self._model.tokenize(word)]
