"""``bertjp train tpu``: pretrain both stages on a Cloud TPU VM, then delete it.

The flags are read once into :class:`TpuOptions` (:mod:`.options`); a pure function,
:func:`build_plan` (:mod:`.plan`, with the commands of :mod:`.remote`), makes a
:class:`Plan` of typed steps (:mod:`.steps`) from them; an :class:`Executor`
(:mod:`.executor`) then runs the steps with the TPU client and command runner it is
given, or :func:`print_plan` prints them (``--dry-run``). :mod:`.cli` holds the parser
and :func:`main`. The steps, in order:

1. preflight: each stage's manifest (``PREFIX.manifest.json``) against its experiment,
   and the files ``PREFIX-*-of-*.tfrecord.gz`` matches against the manifest's shards;
2. checkpoint status: a stage whose model dir already holds a checkpoint at its
   train steps is skipped (``gcloud storage cat MODEL_DIR/STAGE/checkpoint``);
3. the package: an sdist built here and copied to ``MODEL_DIR/_launcher/``
   (or ``--package``);
4. the TPU VM: ``TpuClient.create_node`` (google-cloud-tpu, Application Default
   Credentials), then ``get_node`` until it is READY;
5. install on every worker, over SSH: Python 3.11 venv, the package with its
   ``[train]`` extra, ``tensorflow-tpu`` in place of ``tensorflow``;
6. each stage: write its config YAML on worker 0 and start
   ``python3 -m official.nlp.train --experiment=bert/pretraining --mode=train_and_eval``
   detached (``nohup setsid``), then poll its log, exit code and latest checkpoint;
7. ``TpuClient.delete_node``: always, also after a failure or Ctrl-C (not with
   ``--keep-vm``).

Remote commands run with ``gcloud compute tpus tpu-vm ssh NAME --zone Z --project P
--worker=W --command CMD`` (the gcloud CLI's own login); every value put into CMD is
quoted with :func:`shlex.quote`. Nothing here reads or prints credentials.
"""

from training.tpu.cli import main, make_parser, warmup_warnings
from training.tpu.executor import CommandResult, Executor, subprocess_runner
from training.tpu.options import (
    TpuOptions,
    default_runtime_version,
    default_tpu_name,
    hosts_of,
    options_from_args,
)
from training.tpu.plan import build_plan, print_plan, shard_pattern
from training.tpu.remote import parse_poll_output
from training.tpu.steps import Plan, Stage, Step

__all__ = [
    "CommandResult",
    "Executor",
    "Plan",
    "Stage",
    "Step",
    "TpuOptions",
    "build_plan",
    "default_runtime_version",
    "default_tpu_name",
    "hosts_of",
    "main",
    "make_parser",
    "options_from_args",
    "parse_poll_output",
    "print_plan",
    "shard_pattern",
    "subprocess_runner",
    "warmup_warnings",
]
