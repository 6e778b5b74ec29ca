"""``bertjp train tpu``: the command line (:func:`make_parser`) and :func:`main`.

``main`` reads the flags once into :class:`~training.tpu.options.TpuOptions`, builds the
plan and prints it (``--dry-run``) or runs it with the real Cloud TPU client.
"""

from __future__ import annotations

import argparse
import sys

from training.local.cli import add_continue_options
from training.tpu.executor import Executor
from training.tpu.options import DEFAULT_ACCELERATOR, options_from_args
from training.tpu.plan import build_plan, print_plan
from training.tpu.steps import Plan

__all__ = ["EPILOG", "main", "make_parser", "warmup_warnings"]

EPILOG = """\
Example (BERT-base, WordPiece, both stages on a spot v3-8):
  bertjp train tpu --project my-project --zone europe-west4-a --spot \\
      --cc100-data gs://my-bucket/data/cc100 --wikipedia-data gs://my-bucket/data/wiki \\
      --vocab gs://my-bucket/vocab/wordpiece --model-dir gs://my-bucket/models/base-wp
  ... --dry-run          # print every API request and remote command, touch nothing
  ... --preflight-only   # check both manifests against the experiments and exit

How it runs: the TPU VM is created with the Cloud TPU API (google-cloud-tpu, with your
Application Default Credentials: gcloud auth application-default login); commands on
the VM go over `gcloud compute tpus tpu-vm ssh --worker=...` with your gcloud login.
Training runs detached on worker 0 (nohup), so a dropped SSH poll does not stop it.
The VM is deleted at the end, after a failure and on Ctrl-C, unless --keep-vm (with
--keep-vm, Ctrl-C stops only the following; training goes on until it ends).

Runtime: TPU images with TensorFlow stop at tpu-vm-tf-2.16.1-pjrt (Python 3.10), while
this package pins TensorFlow 2.20 + tf-models-official 2.20 on Python 3.11. So the default
is the plain base image of the TPU generation (tpu-ubuntu2204-base for v2-v4), and the
install step adds python3.11, the package with its [train] extra and tensorflow-tpu 2.20
(it replaces the plain tensorflow wheel; libtpu comes from PyPI).

Resuming: Model Garden resumes from the latest checkpoint in a stage's model dir, so
running the same command again continues; a stage whose checkpoint is already at its
train steps is skipped. Stage dirs: MODEL_DIR/stage1-cc100, MODEL_DIR/stage2-wikipedia
(stage 2 starts from stage 1's weights: task.init_checkpoint = MODEL_DIR/stage1-cc100).
Continued pretraining (--init-from DIR, a transformers BERT directory or a model dir /
checkpoint): one stage, not the two-stage recipe (the stage of the data flag given, or
--stages). The checkpoint (a transformers directory is imported here first) is staged to
MODEL_DIR/init/ and the stage starts from it at step 0 (task.init_checkpoint); the
preflight checks the records' vocabulary and seq length against the model.
Multi-host slices (v3-32, ...) are planned (preflight counts their hosts; training starts
on worker 0) but have not been tried on a real pod."""


def make_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bertjp train tpu``."""
    p = argparse.ArgumentParser(
        prog="bertjp train tpu", allow_abbrev=False, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Pretrain a BERT on a Cloud TPU VM with TF Model Garden: create the VM, "
        "install this package, run stage 1 (CC-100, seq 128) then stage 2 (Wikipedia, seq "
        "512, from stage 1's weights), follow the progress, delete the VM.")
    _add_cloud_options(p)
    _add_training_options(p)
    _add_run_options(p)
    return p


def _add_cloud_options(p: argparse.ArgumentParser) -> None:
    """The TPU VM: project, zone, name, type, runtime, scheduling, network."""
    g = p.add_argument_group("Cloud TPU VM")
    g.add_argument("--project", required=True, help="Google Cloud project id")
    g.add_argument("--zone", required=True, help="zone with TPU quota, e.g. europe-west4-a")
    g.add_argument("--tpu-name", default="",
                   help="TPU VM name (default: bertjp-<last part of --model-dir>)")
    g.add_argument("--accelerator-type", default=DEFAULT_ACCELERATOR,
                   help=f"TPU type (default: {DEFAULT_ACCELERATOR}); v3-32 etc. have 4+ hosts")
    g.add_argument("--runtime-version", default="",
                   help="TPU software version (default: the generation's base image, "
                   "tpu-ubuntu2204-base for v2-v4; see 'Runtime' below)")
    kind = g.add_mutually_exclusive_group()
    kind.add_argument("--spot", action="store_true", help="a Spot VM (cheaper, can be "
                      "preempted; rerun the command to resume)")
    kind.add_argument("--preemptible", action="store_true", help="a preemptible VM (older "
                      "form of --spot)")
    g.add_argument("--network", default="", help="VPC network (default: the API's 'default')")
    g.add_argument("--subnetwork", default="", help="subnetwork (default: the API's default)")
    g.add_argument("--no-external-ip", action="store_true",
                   help="no external IP (the network needs Cloud NAT or Private Google Access "
                   "for pip and Cloud Storage; SSH goes through IAP)")
    g.add_argument("--service-account", default="", metavar="EMAIL",
                   help="service account of the VM (default: the Compute Engine default); "
                   "it needs read/write access to the buckets")


def _add_training_options(p: argparse.ArgumentParser) -> None:
    """The records, vocabulary, model, stages and steps."""
    g = p.add_argument_group("training")
    g.add_argument("--cc100-data", default="", metavar="PREFIX",
                   help="stage 1 records: gs://... --output of bertjp pretraining-data "
                   "--preset v3-cc100 (seq 128, 19 predictions); shards "
                   "PREFIX-*-of-*.tfrecord.gz, manifest PREFIX.manifest.json")
    g.add_argument("--wikipedia-data", default="", metavar="PREFIX",
                   help="stage 2 records: --output of pretraining-data --preset v3-wikipedia "
                   "(seq 512, 76 predictions), same layout")
    g.add_argument("--vocab", required=True, metavar="DIR",
                   help="vocabulary directory (vocab.txt), gs:// or local: sets the vocab size "
                   "and is checked against the manifests' checksum")
    g.add_argument("--vocab-size", type=int, default=0, metavar="N",
                   help="vocab size without reading --vocab (in --dry-run with a gs:// vocab "
                   "the default is the released v3 size of --subword: 32768 or 7027)")
    g.add_argument("--size", default=None,
                   help="model size: base, large, tiny, mini, small, medium or L{layers}_H{hidden}"
                   " (default: base; with --init-from the model's own)")
    g.add_argument("--subword", choices=("wordpiece", "character"), default="wordpiece",
                   help="subword type of the vocabulary (default: wordpiece)")
    g.add_argument("--model-dir", required=True, metavar="gs://BUCKET/models/NAME",
                   help="stage dirs go under it: stage1-cc100, stage2-wikipedia")
    g.add_argument("--stages", action="append", metavar="1|2|1,2",
                   help="stages to run: 1, 2 or 1,2 (default); repeated, they add up")
    g.add_argument("--train-steps", action="append", metavar="N[,N2]",
                   help="steps per stage: one number for every stage, or two for stage 1 and "
                   "stage 2, also as --train-steps N --train-steps N2 (default: 1000000 "
                   "each, as the recipe)")
    g.add_argument("--warmup-steps", type=int, default=None, metavar="N",
                   help="linear warmup steps of each stage, at most 10%% of its train steps "
                   "(default: 10000; --preset continue: its share of the steps)")
    g.add_argument("--learning-rate", type=float, default=None, metavar="X",
                   help="peak learning rate (default: 1e-4, 5e-5 for large; --preset "
                   "continue: its rate)")
    add_continue_options(g)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """The package, dry run, preflight, VM lifetime and polling."""
    g = p.add_argument_group("run")
    g.add_argument("--package", default="", metavar="SPEC",
                   help="what to pip install on the VM. Default: an sdist of this checkout, "
                   "built here and copied to MODEL_DIR/_launcher/ (with constraints.txt). "
                   "A local .tar.gz/.whl or a gs:// file is copied and installed with its "
                   "[train] extra; anything else goes to pip as is, e.g. "
                   "'bertjp[train] @ git+https://github.com/ORG/REPO@TAG'")
    g.add_argument("--dry-run", action="store_true",
                   help="print every API request and remote command in order; touch nothing")
    g.add_argument("--preflight-only", action="store_true",
                   help="read the manifests, check them against the experiments for this TPU's "
                   "host count, print the result and exit (0: fine, 1: problems)")
    g.add_argument("--keep-vm", action="store_true",
                   help="do not delete the TPU VM at the end, on failure or on Ctrl-C")
    g.add_argument("--poll-seconds", type=float, default=300.0, metavar="S",
                   help="seconds between progress polls (default: 300)")
    g.add_argument("--verbose", action="store_true", help="tracebacks on errors")


def _real_client():
    """The Cloud TPU API client, with Application Default Credentials."""
    from google.cloud import tpu_v2

    return tpu_v2.TpuClient()  # Application Default Credentials


def warmup_warnings(plan: Plan) -> list[str]:
    """A line for each stage whose ``--warmup-steps`` is clipped to a share of its steps."""
    from training import configs

    lines = []
    for stage in plan.stages:
        warning = configs.warmup_warning(stage.train_steps, plan.options.warmup_steps,
                                         "--train-steps")
        if warning:
            lines.append(f"warning: {stage.label}: {warning}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """``bertjp train tpu ...``; returns the exit code."""
    options = options_from_args(make_parser().parse_args(argv))
    plan = build_plan(options)
    for line in warmup_warnings(plan):
        print(line, file=sys.stderr, flush=True)
    if options.dry_run:
        if options.vocab_size_assumed:
            print(f"(vocab size {options.vocab_size} assumed for --subword {options.subword}; "
                  "a real run counts the lines of --vocab, --vocab-size sets it)")
        print_plan(plan)
        return 0
    return Executor(_real_client).run(plan)
