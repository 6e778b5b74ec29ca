"""The ``bertjp`` command: one subcommand per project command.

Subcommands are looked up lazily, so ``bertjp --help`` answers at once without
importing Beam or TensorFlow. Each subcommand's module has ``run(argv)``.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["COMMANDS", "VERBOSE_COMMANDS", "main"]

# name -> (module with run(argv), one-line help)
COMMANDS = {
    "wiki-corpus": ("pipelines.wiki_corpus",
                    "Wikipedia Cirrussearch dump -> cleaned, sentence-split corpus shards"),
    "cc100-corpus": ("pipelines.cc100_corpus",
                     "CC-100 ja.txt.xz -> whitespace-normalised document shards"),
    "sample-sentences": ("pipelines.sample_sentences",
                         "deterministic sample of corpus sentences for tokenizer training"),
    "train-vocab": ("pipelines.train_vocab",
                    "WordPiece or character vocabulary + tokenizer directory from a corpus"),
    "pretraining-data": ("pipelines.pretraining_data",
                         "masked-LM + NSP instances as gzip TFRecords (Model Garden v2 names)"),
    "inspect": ("bertjp_cli.records_tools:inspect_main", "print pretraining records as text"),
    "validate": ("bertjp_cli.records_tools:validate_main",
                 "check every pretraining record against the job's manifest"),
    "estimate": ("bertjp_cli.estimate:main",
                 "measure each stage on a sample of the input; project worker-hours, wall time "
                 "and cost on Dataflow"),
    "train": ("training.cli:train_main",
              "pretrain with Model Garden: `train local` here, `train tpu` on a Cloud TPU VM"),
    "convert": ("training.convert:main",
                "Model Garden TF2 checkpoint -> transformers BertForPreTraining directory"),
    "import": ("training.importer:main",
               "transformers BERT directory -> Model Garden TF2 checkpoint (to continue "
               "pretraining)"),
    "extend-vocab": ("training.extend_vocab:main",
                     "add domain words to a transformers BERT's WordPiece vocabulary "
                     "(unused slots, then appended rows) for continued pretraining"),
    "finetune": ("evaluation.cli:finetune_main",
                 "fine-tune a transformers BERT on one JGLUE task and score it on the dev set"),
    "evaluate": ("evaluation.cli:evaluate_main",
                 "fine-tune and score on every JGLUE task present; print the results table"),
}

# Commands with a --verbose flag (a traceback instead of the one-line error): main
# suggests it to these only. `train`: both `train local` and `train tpu` have it.
VERBOSE_COMMANDS = frozenset({
    "wiki-corpus", "cc100-corpus", "sample-sentences", "train-vocab", "pretraining-data",
    "inspect", "validate", "estimate", "train", "convert", "import", "extend-vocab", "finetune",
    "evaluate",
})

USAGE = """usage: bertjp COMMAND [options]   (bertjp COMMAND --help for a command's options)

Build a Japanese BERT from raw text with Apache Beam (locally or on Dataflow).

commands:
{commands}

Options a command does not know go to Beam's PipelineOptions (--runner, --direct_num_workers,
--project, --region, --temp_location, ...)."""


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    rows = "\n".join(f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items())
    return USAGE.format(commands=rows)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bertjp`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(_usage(), file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from bertjp.version import __version__

        print(f"bertjp {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"bertjp: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    from bertjp_cli.gcs_check import gcs_problem

    problem = gcs_problem(rest)
    if problem is not None:
        print(f"bertjp {name}: error: {problem}", file=sys.stderr)
        return 1
    module_name, _, function = COMMANDS[name][0].partition(":")
    entry = getattr(importlib.import_module(module_name), function or "run")
    try:
        code = entry(rest)
    except KeyboardInterrupt as err:  # a job's JobInterrupted says what it left
        print(f"bertjp {name}: {str(err) or 'interrupted'}", file=sys.stderr, flush=True)
        return 130
    except Exception as err:  # pylint: disable=broad-except
        if "--verbose" in rest:
            raise
        lines = str(err).strip().splitlines() or [type(err).__name__]
        hint = "\n(run with --verbose for the traceback)" if name in VERBOSE_COMMANDS else ""
        print(f"bertjp {name}: error: {lines[-1]}{hint}", file=sys.stderr)
        return 1
    return code if isinstance(code, int) else 0
