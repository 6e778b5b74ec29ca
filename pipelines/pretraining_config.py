"""``bertjp pretraining-data``'s configuration: the config dataclass, its flags (the
reference script's names and defaults, the v3 presets) and the tokenizer settings read
from the vocabulary's directory."""

from __future__ import annotations

import argparse
import dataclasses
import posixpath

from bertjp.defaults import BUCKET_DOCUMENTS, MAX_POSITION_EMBEDDINGS, PRESETS, REFERENCE_SCRIPT
from bertjp.instances import InstanceConfig
from bertjp.mecab import MecabDictionary
from bertjp.tokenization import JapaneseTokenizer
from bertjp.vocab_files import (
    TOKENIZER_CONFIG,
    TokenizerSettings,
    read_tokenizer_config,
    read_vocab,
    resolve_settings,
    vocab_file_path,
)
from pipelines import common
from pipelines.options import add_common_arguments
from pipelines.shards import shard_path

__all__ = ["BUCKET_DOCUMENTS", "MAX_SEQ_LENGTH", "NUM_SHARDS", "PretrainingDataConfig",
           "config_from_args", "instance_values", "make_parser"]

MAX_SEQ_LENGTH = MAX_POSITION_EMBEDDINGS
"""BERT's position embeddings (``training.configs.MAX_POSITION_EMBEDDINGS``): train refuses
longer sequences."""
NUM_SHARDS = 8


@dataclasses.dataclass(frozen=True, kw_only=True)
class PretrainingDataConfig(common.JobConfig):
    """Configuration of ``bertjp pretraining-data`` (reference flag names and defaults).

    Attributes:
      vocab: the tokens of the vocabulary, in id order.
      subword: ``wordpiece`` or ``character``.
      do_lower_case: lowercase as the reference (default false: the vocabulary is cased).
      mecab_dict: the MeCab dictionary: ``unidic-lite``, ``ipadic`` or a directory.
      mecabrc: the ``mecabrc`` of a dictionary directory.
      tokenizer_config: the ``tokenizer_config.json`` the settings came from, if any.
      instance: lengths and probabilities.
      dupe_factor: passes over the corpus, each with other masks.
      num_shards: output files.
      bucket_documents: documents per random-next bucket.
      v2_feature_names: Model Garden's v2 names (``input_word_ids``...).
      preset: the v3 recipe stage the instance values came from (``--preset``), if any.
    """

    vocab: tuple[str, ...]
    seed: int = REFERENCE_SCRIPT.random_seed
    subword: str = "wordpiece"
    do_lower_case: bool = False
    mecab_dict: str = "unidic-lite"
    mecabrc: str | None = None
    tokenizer_config: str | None = None
    instance: InstanceConfig = InstanceConfig()
    dupe_factor: int = REFERENCE_SCRIPT.dupe_factor
    num_shards: int = NUM_SHARDS
    bucket_documents: int = BUCKET_DOCUMENTS
    v2_feature_names: bool = True
    preset: str | None = None

    def __post_init__(self):
        super().__post_init__()
        for flag, value, least in (("--dupe-factor", self.dupe_factor, 1),
                                   ("--num-shards", self.num_shards, 1),
                                   ("--bucket-documents", self.bucket_documents, 2)):
            if value < least:
                raise ValueError(f"{flag} must be at least {least}, got {value}")
        if self.instance.max_seq_length > MAX_SEQ_LENGTH:
            raise ValueError(f"--max-seq-length must be at most {MAX_SEQ_LENGTH} (BERT's "
                             f"position embeddings), got {self.instance.max_seq_length}")
        self.dictionary()  # fails now on a bad dictionary

    def dictionary(self) -> MecabDictionary:
        """The MeCab dictionary the tokenizer uses."""
        return MecabDictionary(self.mecab_dict, self.mecabrc)

    @property
    def shard_paths(self) -> list[str]:
        return [shard_path(self.output, i, self.num_shards, ".tfrecord.gz")
                for i in range(self.num_shards)]

    def tokenizer(self) -> JapaneseTokenizer:
        return JapaneseTokenizer(list(self.vocab), subword=self.subword,
                                 do_lower_case=self.do_lower_case,
                                 dictionary=self.dictionary())


def _add_tokenizer_arguments(parser: argparse.ArgumentParser) -> None:
    """``--vocab`` and the tokenizer settings a tokenizer directory may state."""
    group = parser.add_argument_group(
        "vocabulary and tokenizer",
        "A tokenizer directory's tokenizer_config.json (bertjp train-vocab writes one) sets\n"
        "--subword, --do-lower-case and --mecab-dict: a flag may add what it does not state,\n"
        "a flag that contradicts it is an error. With a vocab.txt that has no\n"
        "tokenizer_config.json beside it, the flags and their defaults apply.")
    group.add_argument("--vocab", required=True, metavar="DIR_OR_FILE",
                       help="a tokenizer directory or its vocab.txt, local or gs://")
    group.add_argument("--subword", choices=("wordpiece", "character"), default=None,
                       help="subword tokenizer (default: the tokenizer directory's "
                       "subword_tokenizer_type, else wordpiece)")
    group.add_argument("--do-lower-case", action=argparse.BooleanOptionalAction, default=None,
                       help="lowercase as the reference's default does (default: the tokenizer "
                       "directory's do_lower_case, else off: the vocabulary is cased; see "
                       "README, the lowercasing trap)")
    group.add_argument("--mecab-dict", default=None, metavar="DICT",
                       help="MeCab dictionary: unidic-lite, ipadic or a dictionary directory "
                       "(default: the tokenizer directory's mecab_kwargs, else unidic-lite)")
    group.add_argument("--mecabrc", default=None, metavar="FILE",
                       help="mecabrc for a dictionary directory (default: the tokenizer "
                       "directory's -r, else the dictionary's own)")


def _add_instance_arguments(parser: argparse.ArgumentParser) -> None:
    """The reference's instance flags, with its names and defaults, and the v3 presets."""
    ref = REFERENCE_SCRIPT
    presets = "; ".join(f"{p.name}: {p.max_seq_length}/{p.max_predictions_per_seq}/"
                        f"dupe {p.dupe_factor}" for p in PRESETS.values())
    group = parser.add_argument_group(
        "instances",
        "Defaults are the reference script's (create_pretraining_data.py); --preset sets the\n"
        "v3 recipe's values for one stage (seq/predictions/dupe), and explicit flags override\n"
        f"it. Presets: {presets}.")
    group.add_argument("--preset", choices=sorted(PRESETS), default=None,
                       help="a stage of the v3 recipe: --max-seq-length, "
                       "--max-predictions-per-seq and --dupe-factor as its README runs them "
                       "(default: none, the reference script's defaults)")
    group.add_argument("--max-seq-length", type=int, default=None, metavar="N",
                       help="tokens per instance, [CLS] and [SEP] included; at most "
                       f"{MAX_SEQ_LENGTH}, BERT's position embeddings (default: "
                       f"{ref.max_seq_length}, the reference script's)")
    group.add_argument("--max-predictions-per-seq", type=int, default=None, metavar="N",
                       help="most masked tokens per instance; at most --max-seq-length - 3 "
                       f"(default: {ref.max_predictions_per_seq}, the reference script's; the "
                       "v3 recipe uses 19 at 128 and 76 at 512: --preset)")
    group.add_argument("--masked-lm-prob", type=float, default=ref.masked_lm_prob, metavar="P",
                       help=f"share of the tokens to mask (default: {ref.masked_lm_prob}, the "
                       "reference script's and the recipe's)")
    group.add_argument("--short-seq-prob", type=float, default=ref.short_seq_prob, metavar="P",
                       help="how often a document pass uses a shorter random target length "
                       f"(default: {ref.short_seq_prob}, the reference script's and the "
                       "recipe's)")
    group.add_argument("--dupe-factor", type=int, default=None, metavar="N",
                       help="passes over the corpus, each with other masks (default: "
                       f"{ref.dupe_factor}, the reference script's; the recipe: --preset)")
    group.add_argument("--seed", "--random-seed", dest="seed", type=int,
                       default=ref.random_seed, metavar="N",
                       help="seed of every random draw and of the record order (--random-seed: "
                       f"the reference's name; default: {ref.random_seed}, the reference "
                       "script's)")
    group.add_argument("--no-whole-word-mask", dest="do_whole_word_mask",
                       action="store_false", help="mask tokens, not whole MeCab words "
                       "(default: whole-word masking, the recipe's)")
    group.add_argument("--reference-shuffle", action="store_true",
                       help="order the mask candidates with the reference's full rng.shuffle "
                       "(default: the same uniform order, drawn lazily: ~5x fewer draws)")
    group.add_argument("--bucket-documents", type=int, default=BUCKET_DOCUMENTS, metavar="N",
                       help=f"documents per random-next bucket (default: {BUCKET_DOCUMENTS}, "
                       "ours)")


def instance_values(args) -> tuple[int, int, int]:
    """``(max_seq_length, max_predictions_per_seq, dupe_factor)``: each flag given, else
    the preset's value, else the reference script's default."""
    preset = PRESETS.get(args.preset) if args.preset else None
    base = preset or REFERENCE_SCRIPT

    def pick(name):
        given = getattr(args, name)
        return given if given is not None else getattr(base, name)

    return pick("max_seq_length"), pick("max_predictions_per_seq"), pick("dupe_factor")


def make_parser() -> argparse.ArgumentParser:
    """``bertjp pretraining-data``'s flags."""
    parser = argparse.ArgumentParser(
        prog="bertjp pretraining-data", allow_abbrev=False,
        description="Create whole-word-masked MLM + NSP instances from corpus shards as gzip "
        "TFRecords with Model Garden's feature names.",
        epilog=common.EPILOG.split("Outputs:")[0]
        + "Outputs: PREFIX-SSSSS-of-NNNNN.tfrecord.gz, PREFIX.dead-letter.jsonl, "
        "PREFIX.manifest.json.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    io = parser.add_argument_group("input and output")
    common.add_input_argument(io, "corpus files (one sentence per line, an empty line between "
                              "documents), local or gs://, plain or .gz, globs allowed")
    io.add_argument("--output", required=True, metavar="PREFIX",
                    help="output prefix, local or gs:// (a trailing / means PREFIX/pretraining)")
    io.add_argument("--num-shards", type=int, default=NUM_SHARDS, metavar="N",
                    help=f"output files, balanced by bytes (default: {NUM_SHARDS})")
    io.add_argument("--v1-feature-names", action="store_true",
                    help="input_ids/segment_ids instead of input_word_ids/input_type_ids "
                    "(default: Model Garden's v2 names)")
    common.add_max_line_bytes_argument(io)
    _add_tokenizer_arguments(parser)
    _add_instance_arguments(parser)
    add_common_arguments(parser)
    return parser


def _read_text(path: str) -> str:
    """A UTF-8 file, local or ``gs://``."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as f:
        return f.read().decode("utf-8")


def _tokenizer_settings(args, vocab_path: str) -> tuple[TokenizerSettings, str | None]:
    """The settings to tokenize with and the ``tokenizer_config.json`` they came from."""
    from apache_beam.io.filesystems import FileSystems

    flags = TokenizerSettings(subword=args.subword, do_lower_case=args.do_lower_case,
                              mecab_dict=args.mecab_dict, mecabrc=args.mecabrc)
    source = posixpath.join(posixpath.dirname(vocab_path), TOKENIZER_CONFIG)
    if not FileSystems.exists(source):
        return resolve_settings(None, flags), None
    stated = read_tokenizer_config(_read_text(source), source)
    return resolve_settings(stated, flags, source), source


def config_from_args(args) -> PretrainingDataConfig:
    """The job's configuration from its parsed flags and the vocabulary they name.

    Raises:
      ValueError: a flag's value (or a combination) is not possible, naming the flag.
    """
    from apache_beam.io.filesystems import FileSystems

    path = vocab_file_path(args.vocab)
    if not FileSystems.exists(path):
        raise ValueError(f"--vocab {args.vocab}: {path} does not exist")
    vocab = tuple(read_vocab(path, FileSystems.open))
    settings, source = _tokenizer_settings(args, path)
    max_seq_length, max_predictions, dupe_factor = instance_values(args)
    return PretrainingDataConfig(
        inputs=tuple(args.input), seed=args.seed, vocab=vocab,
        output=common.resolve_output(args.output, "prefix", "pretraining"),
        subword=settings.subword, do_lower_case=settings.do_lower_case,
        mecab_dict=settings.mecab_dict, mecabrc=settings.mecabrc, tokenizer_config=source,
        instance=InstanceConfig(max_seq_length=max_seq_length,
                                max_predictions_per_seq=max_predictions,
                                masked_lm_prob=args.masked_lm_prob,
                                short_seq_prob=args.short_seq_prob,
                                do_whole_word_mask=args.do_whole_word_mask,
                                reference_shuffle=args.reference_shuffle),
        dupe_factor=dupe_factor, num_shards=args.num_shards, preset=args.preset,
        bucket_documents=args.bucket_documents, v2_feature_names=not args.v1_feature_names,
        max_line_bytes=args.max_line_bytes)
