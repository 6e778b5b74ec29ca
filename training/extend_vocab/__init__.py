"""``bertjp extend-vocab``: add domain words to a released model's WordPiece vocabulary.

For continued pretraining from a released model (a transformers ``BertForPreTraining``
or ``BertForMaskedLM`` directory with ``vocab.txt`` and a ``BertJapaneseTokenizer``
``tokenizer_config.json``), each new word becomes one WordPiece token:

1. first into the ``[unused*]`` slots, in id order (ids unchanged, no resize);
2. then appended after the last id: the input embeddings and the MLM output layer
   (its decoder, tied to the embeddings, and its bias) grow by one row each.

A new token's embedding row (and the decoder row when it is not tied) is the mean of
the rows of the pieces the OLD tokenizer split the word into, and its MLM bias the
mean of those pieces' biases: random rows give NaN losses (bert4keras#408), and the
mean keeps the model's output for text without the new words exactly as it was
(logits on every old id are unchanged; only the new ids join the softmax).

The words come from ``--words`` (one per line) and, with ``--corpus``, from the
``--top-k`` most frequent MeCab words of a corpus (counted with the model's own word
splitting: lowercasing when the tokenizer lowercases, NFKC, MeCab) that contain a
letter and that the tokenizer splits into more than one piece. Each word is normalised
as the tokenizer normalises text. Skipped and reported: words already in the
vocabulary, words the tokenizer turns into ``[UNK]`` (a character outside the
vocabulary, or longer than 100 characters), words with whitespace and repeats.

Limits of a WordPiece entry: the tokenizer first splits text into MeCab words, and
a vocabulary entry ``word`` makes ``word`` one token only where MeCab yields it as one
word; a word MeCab splits (``ハイパー|バイザー``) cannot become one token (such words
are added and reported as a warning). The entry is also the longest match at the
start of longer MeCab words it begins (``トークナイザーズ``), whose pieces change.

The output directory (``save_pretrained``, ``vocab.txt``, the model's
``tokenizer_config.json`` copied, or written when it had none, and ``extend_vocab.json``
listing what was added) is written beside it first and renamed into place: nothing is
written on failure. It loads with ``AutoModelForMaskedLM``/``AutoTokenizer`` and is a
``--vocab`` for ``bertjp pretraining-data``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from typing import Callable, Iterable

from bertjp.tokenization import JapaneseTokenizer
from bertjp.vocab_files import (
    TOKENIZER_CONFIG,
    VOCAB_FILE,
    TokenizerSettings,
    read_tokenizer_config,
    read_vocab,
    resolve_settings,
    tokenizer_files,
)

__all__ = ["AddedWord", "WordPlan", "corpus_words", "extend_model", "extend_vocab", "main",
           "normalize_word", "plan_words"]

from training.extend_vocab.words import (
    AddedWord,
    WordPlan,
    corpus_words,
    normalize_word,
    plan_words,
)

_ARCHITECTURES = ("BertForPreTraining", "BertForMaskedLM")
_COPIED = ("special_tokens_map.json",)
REPORT_FILE = "extend_vocab.json"


def _load_tokenizer(model_dir: str) -> tuple[JapaneseTokenizer, bytes | None]:
    """The model directory's WordPiece tokenizer and its ``tokenizer_config.json``."""
    tokens = read_vocab(model_dir)
    config_path = os.path.join(model_dir, TOKENIZER_CONFIG)
    config = None
    if os.path.exists(config_path):
        with open(config_path, "rb") as f:
            config = f.read()
    stated = read_tokenizer_config(config, config_path) if config is not None else None
    settings = resolve_settings(stated, TokenizerSettings(), config_path)
    if settings.subword != "wordpiece":
        raise ValueError(f"{config_path}: subword_tokenizer_type {settings.subword}: "
                         "extend-vocab adds WordPiece tokens (a character vocabulary "
                         "cannot hold words)")
    tokenizer = JapaneseTokenizer(tokens, subword="wordpiece",
                                  do_lower_case=bool(settings.do_lower_case),
                                  dictionary=settings.dictionary())
    return tokenizer, config


def _load_model(model_dir: str):
    """The model of a local transformers directory (BertForPreTraining or ...MaskedLM)."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(model_dir, local_files_only=True)
    names = [a for a in (config.architectures or ["BertForPreTraining"])
             if a in _ARCHITECTURES]
    if config.model_type != "bert" or not names:
        raise ValueError(f"{model_dir}/config.json: architectures "
                         f"{config.architectures} ({config.model_type}): extend-vocab "
                         f"extends {' or '.join(_ARCHITECTURES)}")
    cls = getattr(transformers, names[0])
    return cls.from_pretrained(model_dir, local_files_only=True).eval()


def extend_model(model, plan: WordPlan, old_size: int) -> None:
    """Writes the plan's new rows into ``model`` (in place), resizing for appended words.

    Each new input embedding row is the mean of its pieces' rows, each new MLM bias the
    mean of their biases (and, when the decoder is not tied, each decoder row the mean
    of its pieces' decoder rows), all taken before any row changes.
    """
    import torch

    appended = sum(not a.slot for a in plan.added)
    with torch.no_grad():
        old_in = model.get_input_embeddings().weight.detach().clone()
        old_out = model.get_output_embeddings()
        tied = old_out.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
        old_dec = None if tied else old_out.weight.detach().clone()
        old_bias = model.cls.predictions.bias.detach().clone()
        if appended:
            model.resize_token_embeddings(old_size + appended, mean_resizing=False)
        emb = model.get_input_embeddings().weight
        out = model.get_output_embeddings()
        bias = model.cls.predictions.bias
        for a in plan.added:
            ids = torch.tensor(a.piece_ids)
            emb[a.id] = old_in[ids].float().mean(0).to(emb.dtype)
            if old_dec is not None:
                out.weight[a.id] = old_dec[ids].float().mean(0).to(out.weight.dtype)
            bias[a.id] = old_bias[ids].float().mean().to(bias.dtype)
        if out.bias is not None and out.bias is not bias:
            out.bias.copy_(bias)


def _check_output(model_dir: str, output: str, overwrite: bool) -> None:
    if output.startswith("gs://"):
        raise ValueError(f"--output {output}: write to a local directory, then copy it")
    if os.path.exists(output):
        if os.path.samefile(output, model_dir):
            raise ValueError(f"--output {output} is the --model directory")
        if not os.path.isdir(output):
            raise FileExistsError(f"--output {output} exists and is not a directory")
        inside = os.path.commonpath([os.path.abspath(model_dir), os.path.abspath(output)])
        if os.path.samefile(inside, output):
            raise ValueError(f"--model {model_dir} is inside --output {output}")
        if os.listdir(output) and not overwrite:
            raise FileExistsError(f"--output {output} exists and is not empty (pass "
                                  "--overwrite to replace it)")


def _write(output: str, model, vocab: list[str], config: bytes | None,
           tokenizer: JapaneseTokenizer, model_dir: str, report: dict) -> None:
    """Writes everything into a temporary directory beside ``output``, then renames it."""
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(output))}.",
                           dir=parent)
    try:
        model.save_pretrained(tmp)
        if config is None:
            config = tokenizer_files(vocab, "wordpiece", tokenizer.dictionary,
                                     model.config.max_position_embeddings)[TOKENIZER_CONFIG]
        files = {VOCAB_FILE: "".join(t + "\n" for t in vocab).encode("utf-8"),
                 TOKENIZER_CONFIG: config,
                 REPORT_FILE: (json.dumps(report, ensure_ascii=False, indent=2) + "\n")
                 .encode("utf-8")}
        for name in _COPIED:
            if os.path.exists(os.path.join(model_dir, name)):
                with open(os.path.join(model_dir, name), "rb") as f:
                    files[name] = f.read()
        for name, data in files.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
        mask = os.umask(0o022)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)
        for name in os.listdir(tmp):
            os.chmod(os.path.join(tmp, name), 0o666 & ~mask)
        if os.path.isdir(output):
            shutil.rmtree(output)
        os.rename(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _report(model_dir: str, plan: WordPlan, old_size: int, new_size: int,
            corpus: list[tuple[str, int]]) -> dict:
    """The report, as plain JSON values (lists, not tuples)."""
    return json.loads(json.dumps({
        "model": model_dir, "old_vocab_size": old_size, "vocab_size": new_size,
        "added": [dataclasses.asdict(a) for a in plan.added],
        "present": plan.present, "unknown": plan.unknown, "invalid": plan.invalid,
        "duplicates": plan.duplicates,
        "mecab_split": [a.word for a in plan.mecab_split],
        "corpus_words": [{"word": w, "count": c} for w, c in corpus],
    }))


def _log_plan(plan: WordPlan, log: Callable[[str], None]) -> None:
    for a in plan.added:
        where = "[unused] slot" if a.slot else "appended"
        log(f"add {a.word!r} as id {a.id} ({where}); was {' '.join(a.pieces)}")
    if plan.present:
        log("already in the vocabulary (skipped): " + ", ".join(
            f"{w} ({i})" for w, i in plan.present.items()))
    if plan.unknown:
        log("characters outside the vocabulary, the tokenizer gives [UNK] (skipped): "
            + ", ".join(plan.unknown))
    for word, reason in plan.invalid.items():
        log(f"skipped {word!r}: {reason}")
    if plan.duplicates:
        log("repeated (added once): " + ", ".join(plan.duplicates))
    for a in plan.mecab_split:
        log(f"warning: MeCab splits {a.word!r} into {' | '.join(a.mecab_words)}: the token "
            "is used only where MeCab yields the word whole")


def extend_vocab(model_dir: str, output: str, words: Iterable[str] = (),
                 corpus: Iterable[str] = (), top_k: int = 0, overwrite: bool = False,
                 log: Callable[[str], None] = print) -> dict:
    """Adds ``words`` (and a corpus's top-K split words) to a model's vocabulary.

    Args:
      model_dir: a local transformers directory (``BertForPreTraining`` or
        ``BertForMaskedLM``, ``vocab.txt``, optional ``tokenizer_config.json``).
      output: the local output directory (must not exist or be empty, unless
        ``overwrite``).
      words: the words to add.
      corpus: text files whose ``top_k`` most frequent split words are added too.
      top_k: how many corpus words.
      overwrite: replace a non-empty ``output``.
      log: progress printer.

    Returns:
      The report written to ``extend_vocab.json``: ``added`` (word, id, slot, pieces,
      piece_ids, mecab_words), ``present``, ``unknown``, ``invalid``, ``duplicates``,
      ``mecab_split``, ``corpus_words``, ``old_vocab_size`` and ``vocab_size``.

    Raises:
      ValueError, FileExistsError, FileNotFoundError: with a one-line explanation;
      nothing is written then.
    """
    model_dir = str(model_dir).rstrip("/") or "/"
    output = str(output)
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"--model {model_dir}: no such local directory")
    corpus = [str(p) for p in corpus]
    if corpus and top_k <= 0:
        raise ValueError("--corpus needs --top-k K (how many of its words to add)")
    _check_output(model_dir, output, overwrite)
    tokenizer, config = _load_tokenizer(model_dir)
    words = list(words)
    found = corpus_words(tokenizer, corpus, top_k,
                         {normalize_word(tokenizer, w) for w in words}) if corpus else []
    if corpus:
        log(f"corpus: the {len(found)} most frequent split words: "
            + ", ".join(f"{w} ({c})" for w, c in found))
    plan = plan_words(tokenizer, words + [w for w, _ in found])
    _log_plan(plan, log)
    if not plan.added:
        raise ValueError("no word to add (see the messages above)")
    old_size = len(tokenizer.vocab)
    model = _load_model(model_dir)
    rows = model.get_input_embeddings().weight.shape[0]
    if rows != old_size:
        raise ValueError(f"{model_dir}: the model has {rows} embedding rows but vocab.txt "
                         f"has {old_size} tokens")
    extend_model(model, plan, old_size)
    vocab = list(tokenizer.vocab)
    for a in plan.added:
        if a.slot:
            vocab[a.id] = a.word
        else:
            vocab.append(a.word)
    report = _report(model_dir, plan, old_size, len(vocab), found)
    _write(output, model, vocab, config, tokenizer, model_dir, report)
    slots = sum(a.slot for a in plan.added)
    log(f"wrote {output}: {slots} words in [unused] slots, {len(plan.added) - slots} "
        f"appended (vocabulary {old_size} -> {len(vocab)})")
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bertjp extend-vocab", allow_abbrev=False,
        description="Add domain words to a transformers BERT's WordPiece vocabulary for "
        "continued pretraining: first into the [unused*] slots, then appended (embeddings "
        "and MLM output layer resized). Each new row is the mean of the rows of the pieces "
        "the old tokenizer split the word into (the MLM bias likewise). A vocabulary entry "
        "makes a word one token only where MeCab yields it as one word: words MeCab "
        "splits cannot become one token (they are reported). Words already in the "
        "vocabulary or that the tokenizer makes [UNK] are skipped and reported.",
        epilog="Example: bertjp extend-vocab --model models/bert-base-japanese-v3 "
        "--words domain_words.txt --corpus domain.txt --top-k 500 --output models/extended")
    parser.add_argument("--model", required=True, metavar="DIR",
                        help="local transformers directory (BertForPreTraining or "
                        "BertForMaskedLM, vocab.txt, tokenizer_config.json)")
    parser.add_argument("--words", metavar="FILE",
                        help="UTF-8 file of words to add, one per line")
    parser.add_argument("--corpus", action="append", default=[], metavar="FILE",
                        help="text file (.gz allowed; repeatable): also add its --top-k most "
                        "frequent MeCab words that contain a letter and that the tokenizer "
                        "splits into several pieces")
    parser.add_argument("--top-k", type=int, default=0, metavar="K",
                        help="how many corpus words to add (needed with --corpus)")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="local output directory (written whole, or not at all)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a non-empty --output directory")
    parser.add_argument("--verbose", action="store_true",
                        help="the traceback on errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``bertjp extend-vocab``: returns 0; raises with a one-line message on user errors."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if not args.words and not args.corpus:
        raise ValueError("give --words FILE, --corpus FILE --top-k K, or both")
    words: list[str] = []
    if args.words:
        with open(args.words, encoding="utf-8") as f:
            words = f.read().splitlines()
    extend_vocab(args.model, args.output, words, args.corpus, args.top_k,
                 overwrite=args.overwrite, log=lambda line: print(line, flush=True))
    return 0
