"""Model inputs for JGLUE tasks, tokenized with bertjp's :class:`JapaneseTokenizer`.

The tokenizer is built from a model directory's ``vocab.txt`` and
``tokenizer_config.json`` (the files ``bertjp convert`` writes), so its tokens are
``BertJapaneseTokenizer``'s. As ``BertJapaneseTokenizer`` (a ``PreTrainedTokenizer``)
does, a literal special token in the text (JSQuAD contexts are ``title [SEP] body``)
becomes that token, not MeCab pieces of it.

* Sentence pairs (JSTS, JNLI), single sentences (MARC-ja) and JCommonsenseQA's five
  ``(question, choice)`` pairs: ``[CLS] a [SEP] b [SEP]`` truncated as transformers'
  ``truncation=True`` (``longest_first``: one token at a time from the longer side).
* JSQuAD: ``[CLS] question [SEP] context-window [SEP]`` with the question cut to
  ``max_query_length`` tokens and the context in windows ``doc_stride`` tokens apart
  (legacy ``run_squad.py``). Each context token keeps its character span in the
  original context (``tokenize_with_offsets``), which maps gold answers to token spans
  and predicted spans back to text. :func:`postprocess_qa` picks each question's best
  span out of the n-best start and end logits of all its windows and gives two texts:
  JGLUE's (the span's tokens joined without ``##`` and spaces, what the patched
  ``squad_metrics.py`` scores for ``BertJapaneseTokenizer``) and the raw context
  substring the tokens cover.

Where we differ from JGLUE: a training answer's token span is the tokens overlapping its
characters, where JGLUE's ``run_squad.py`` maps whitespace chunks and then searches
the chunk for the answer's own tokens, falling back to the whole chunk when MeCab
splits the answer differently alone (176 JSQuAD dev answers). Windows, max-context,
n-best search and JGLUE's answer text are as in ``run_squad.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any, Sequence

from bertjp.tokenization import SPECIAL_TOKENS, JapaneseTokenizer
from bertjp.vocab_files import (
    TOKENIZER_CONFIG,
    TokenizerSettings,
    read_tokenizer_config,
    read_vocab,
    resolve_settings,
)

__all__ = ["Encoded", "QAFeature", "SpanToken", "encode_choices", "encode_pair",
           "load_tokenizer", "postprocess_qa", "qa_features", "span_tokens"]

_SPECIAL = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS))


def load_tokenizer(model_dir: str) -> JapaneseTokenizer:
    """The tokenizer of a model directory: its ``vocab.txt`` with what its
    ``tokenizer_config.json`` states (the defaults — cased WordPiece, unidic-lite —
    where it states nothing or is absent).

    Raises:
      FileNotFoundError: the directory has no ``vocab.txt``.
      ValueError: the config asks for a tokenizer bertjp cannot reproduce.
    """
    vocab = read_vocab(os.path.join(model_dir, "vocab.txt"))
    config_path = os.path.join(model_dir, TOKENIZER_CONFIG)
    stated = None
    if os.path.exists(config_path):
        with open(config_path, "rb") as f:
            stated = read_tokenizer_config(f.read(), config_path)
    settings = resolve_settings(stated, TokenizerSettings(), config_path)
    return JapaneseTokenizer(vocab, subword=settings.subword,
                             do_lower_case=bool(settings.do_lower_case),
                             dictionary=settings.dictionary())


@dataclasses.dataclass(frozen=True)
class SpanToken:
    """A token with its character span ``[start, end)`` in the text it came from
    (``start == end == -1`` for nothing: not used for special tokens of the text)."""

    token: str
    id: int
    start: int
    end: int


def span_tokens(tokenizer: JapaneseTokenizer, text: str) -> list[SpanToken]:
    """The tokens of ``text`` with their character spans in ``text``; a literal special
    token (``[SEP]``...) is that token, spanning its characters."""
    out: list[SpanToken] = []
    position = 0
    for match in [*_SPECIAL.finditer(text), None]:
        end = match.start() if match else len(text)
        piece = text[position:end]
        if piece:
            for tok in _offset_tokens(tokenizer, piece):
                out.append(SpanToken(tok.token, tok.id, tok.start + position,
                                     tok.end + position))
        if match:
            token = match.group(0)
            out.append(SpanToken(token, tokenizer.ids[token], match.start(), match.end()))
            position = match.end()
    return out


def _offset_tokens(tokenizer: JapaneseTokenizer, text: str) -> list:
    return tokenizer.tokenize_with_offsets(text)


def _ids(tokenizer: JapaneseTokenizer, text: str) -> list[int]:
    """Ids of ``text`` with literal special tokens kept whole (as BertJapaneseTokenizer)."""
    ids: list[int] = []
    position = 0
    for match in [*_SPECIAL.finditer(text), None]:
        end = match.start() if match else len(text)
        if end > position:
            ids += tokenizer.encode(text[position:end])[1]
        if match:
            ids.append(tokenizer.ids[match.group(0)])
            position = match.end()
    return ids


@dataclasses.dataclass
class Encoded:
    """One model input: ``input_ids`` and ``token_type_ids`` (no padding)."""

    input_ids: list[int]
    token_type_ids: list[int]


def _truncate_longest_first(a: list[int], b: list[int], budget: int) -> tuple[list, list]:
    """Transformers' ``longest_first``: drop the last token of the longer side (of ``b``
    on a tie) until both fit in ``budget``."""
    a, b = list(a), list(b)
    while len(a) + len(b) > budget:
        if len(a) > len(b):
            a.pop()
        else:
            b.pop()
    return a, b


def encode_pair(tokenizer: JapaneseTokenizer, first: str, second: str | None,
                max_seq_length: int) -> Encoded:
    """``[CLS] first [SEP] (second [SEP])`` of at most ``max_seq_length`` tokens."""
    cls, sep = tokenizer.ids["[CLS]"], tokenizer.ids["[SEP]"]
    a = _ids(tokenizer, first)
    if second is None:
        a = a[:max(max_seq_length - 2, 0)]
        return Encoded([cls, *a, sep], [0] * (len(a) + 2))
    a, b = _truncate_longest_first(a, _ids(tokenizer, second), max_seq_length - 3)
    return Encoded([cls, *a, sep, *b, sep], [0] * (len(a) + 2) + [1] * (len(b) + 1))


def encode_choices(tokenizer: JapaneseTokenizer, question: str, choices: Sequence[str],
                   max_seq_length: int) -> list[Encoded]:
    """JCommonsenseQA's inputs (``run_swag.py``): ``[CLS] question [SEP] choice [SEP]``
    per choice."""
    return [encode_pair(tokenizer, question, choice, max_seq_length) for choice in choices]


@dataclasses.dataclass
class QAFeature:
    """One JSQuAD window.

    Attributes:
      example_index: the question's index in the list given to :func:`qa_features`.
      input_ids: ``[CLS] question [SEP] window [SEP]``.
      token_type_ids: 0 for ``[CLS] question [SEP]``, 1 after.
      tokens: the token strings of ``input_ids``.
      char_spans: per token, its ``(start, end)`` in the context, or ``None`` where
        the token cannot be an answer (question, ``[CLS]``, ``[SEP]``, a literal
        special token of the context).
      max_context: per token, whether this window gives it the most context (the
        legacy ``_check_is_max_context``); only such tokens may start an answer.
      start_position: the answer's first token in training (0, ``[CLS]``, when the
        window does not contain the answer); ``None`` for evaluation.
      end_position: the answer's last token, likewise.
    """

    example_index: int
    input_ids: list[int]
    token_type_ids: list[int]
    tokens: list[str]
    char_spans: list[tuple[int, int] | None]
    max_context: list[bool]
    start_position: int | None = None
    end_position: int | None = None


def _answer_tokens(context: list[SpanToken], start: int, end: int) -> tuple[int, int] | None:
    """First and last context tokens overlapping characters ``[start, end)``."""
    hits = [i for i, t in enumerate(context)
            if t.token not in SPECIAL_TOKENS and t.start < end and t.end > start]
    return (hits[0], hits[-1]) if hits else None


def _windows(length: int, room: int, stride: int) -> list[tuple[int, int]]:
    """``(start, size)`` of the legacy windows over ``length`` context tokens."""
    spans = []
    start = 0
    while True:
        size = min(length - start, room)
        spans.append((start, size))
        if start + size >= length:
            return spans
        start += min(size, stride)


def _max_context(spans: list[tuple[int, int]], index: int, position: int) -> bool:
    """Legacy ``_check_is_max_context``: the window where ``position`` has the largest
    ``min(left, right) + 0.01 * size``."""
    best, best_index = None, None
    for i, (start, size) in enumerate(spans):
        end = start + size - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * size
        if best is None or score > best:
            best, best_index = score, i
    return best_index == index


def qa_features(tokenizer: JapaneseTokenizer, examples: Sequence[dict], max_seq_length: int,
                doc_stride: int, max_query_length: int, training: bool) -> list[QAFeature]:
    """JSQuAD windows of each example.

    Args:
      tokenizer: the model's tokenizer.
      examples: dicts with ``question``, ``context`` and, for training, ``answers``
        (the first is used: ``{"text", "answer_start"}``, a character offset into
        ``context``).
      max_seq_length: tokens per window, ``[CLS]`` and both ``[SEP]`` included.
      doc_stride: tokens between window starts.
      max_query_length: question tokens kept.
      training: label each window with the answer's token span (``[CLS]`` if outside).

    Raises:
      ValueError: ``max_seq_length`` leaves no room for context, or a training
        answer's span lies outside its context.
    """
    cls, sep = tokenizer.ids["[CLS]"], tokenizer.ids["[SEP]"]
    features = []
    contexts: dict[str, list[SpanToken]] = {}  # a paragraph has several questions
    for index, example in enumerate(examples):
        query = span_tokens(tokenizer, example["question"])[:max_query_length]
        context = contexts.get(example["context"])
        if context is None:
            context = contexts[example["context"]] = span_tokens(tokenizer, example["context"])
        room = max_seq_length - len(query) - 3
        if room <= 0:
            raise ValueError(f"max seq length {max_seq_length} leaves no room for the context "
                             f"after a question of {len(query)} tokens")
        answer = None
        if training:
            gold = example["answers"][0]
            start = int(gold["answer_start"])
            end = start + len(gold["text"])
            if start < 0 or end > len(example["context"]) or not gold["text"]:
                raise ValueError(f"question {example.get('id', index)!r}: answer "
                                 f"{gold['text']!r} at {start} is outside its context")
            answer = _answer_tokens(context, start, end)
        spans = _windows(len(context), room, doc_stride)
        head = [cls, *(t.id for t in query), sep]
        head_tokens = ["[CLS]", *(t.token for t in query), "[SEP]"]
        for w, (start, size) in enumerate(spans):
            window = context[start:start + size]
            ids = head + [t.id for t in window] + [sep]
            feature = QAFeature(
                example_index=index, input_ids=ids,
                token_type_ids=[0] * len(head) + [1] * (size + 1),
                tokens=head_tokens + [t.token for t in window] + ["[SEP]"],
                char_spans=[None] * len(head) + [
                    None if t.token in SPECIAL_TOKENS else (t.start, t.end) for t in window
                ] + [None],
                max_context=[False] * len(head) + [
                    _max_context(spans, w, start + k) for k in range(size)] + [False])
            if training:
                first = last = 0
                if answer and start <= answer[0] and answer[1] < start + size:
                    first = answer[0] - start + len(head)
                    last = answer[1] - start + len(head)
                feature.start_position, feature.end_position = first, last
            features.append(feature)
    return features


def jglue_text(tokens: Sequence[str]) -> str:
    """JGLUE's answer text for ``BertJapaneseTokenizer``: ``convert_tokens_to_string``
    (``" ".join(tokens).replace(" ##", "").strip()``, so a span that starts with a
    continuation keeps its ``##``, as in JGLUE) with the spaces removed
    (``"".join(tok_text.split(" "))``)."""
    text = " ".join(tokens).replace(" ##", "").strip()
    return "".join(text.split(" "))


def postprocess_qa(features: Sequence[QAFeature], start_logits: Sequence[Sequence[float]],
                   end_logits: Sequence[Sequence[float]], contexts: Sequence[str],
                   n_best_size: int = 20, max_answer_length: int = 30) -> list[dict[str, Any]]:
    """Each example's best answer over its windows, as the legacy ``run_squad.py``.

    A candidate is a pair of the ``n_best_size`` best start and end positions of one
    window with both tokens in the context, ``end >= start``, at most
    ``max_answer_length`` tokens, and a start with max context; its score is the sum of
    the two logits. An example with no candidate gets the empty answer.

    Args:
      features: the windows, from :func:`qa_features`.
      start_logits: per window, one logit per input token.
      end_logits: likewise.
      contexts: the examples' contexts, by ``example_index``.
      n_best_size: start and end positions tried per window.
      max_answer_length: longest answer in tokens.

    Returns:
      Per example: ``{"text": JGLUE's text, "span_text": the context substring,
      "start": character offset or -1, "score": float}``.
    """
    best: dict[int, tuple] = {}
    for feature, starts, ends in zip(features, start_logits, end_logits, strict=True):
        n = len(feature.input_ids)
        starts, ends = list(starts)[:n], list(ends)[:n]
        top_starts = sorted(range(n), key=lambda i: -starts[i])[:n_best_size]
        top_ends = sorted(range(n), key=lambda i: -ends[i])[:n_best_size]
        for s in top_starts:
            if feature.char_spans[s] is None or not feature.max_context[s]:
                continue
            for e in top_ends:
                if (feature.char_spans[e] is None or e < s
                        or e - s + 1 > max_answer_length):
                    continue
                score = float(starts[s] + ends[e])
                current = best.get(feature.example_index)
                if current is None or score > current[0]:
                    best[feature.example_index] = (score, feature, s, e)
    out = []
    for index, context in enumerate(contexts):
        if index not in best:
            out.append({"text": "", "span_text": "", "start": -1, "score": float("-inf")})
            continue
        score, feature, s, e = best[index]
        spans = [span for span in feature.char_spans[s:e + 1] if span is not None]
        begin, finish = min(a for a, _ in spans), max(b for _, b in spans)
        out.append({"text": jglue_text(feature.tokens[s:e + 1]),
                    "span_text": context[begin:finish], "start": begin, "score": score})
    return out


def dump_jsonl(path: str, rows: Sequence[dict]) -> None:
    """Writes ``rows`` as JSON Lines (UTF-8, not ASCII-escaped)."""
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
