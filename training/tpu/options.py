"""The options of ``bertjp train tpu``: the flags, read once into :class:`TpuOptions`.

:func:`options_from_args` is the only place that reads the parsed arguments; the
plan, the executor and the dry run take the validated :class:`TpuOptions`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import pathlib
import re

__all__ = [
    "DEFAULT_ACCELERATOR",
    "STAGE_DEFS",
    "StageDef",
    "TpuOptions",
    "default_runtime_version",
    "default_tpu_name",
    "hosts_of",
    "options_from_args",
    "validate",
]

DEFAULT_ACCELERATOR = "v3-8"
# The project pins TensorFlow 2.20 and tf-models-official 2.20 on Python 3.11; the
# TPU VM TensorFlow images stop at tpu-vm-tf-2.16.1-* (Python 3.10), whose TensorFlow
# would be replaced anyway. So the VM gets the plain base image of its TPU generation
# and the install step adds Python 3.11, the package and tensorflow-tpu 2.20.
RUNTIME_BY_FAMILY = {
    "v2": "tpu-ubuntu2204-base",
    "v3": "tpu-ubuntu2204-base",
    "v4": "tpu-ubuntu2204-base",
    "v5litepod": "v2-alpha-tpuv5-lite",
    "v5e": "v2-alpha-tpuv5-lite",
    "v5p": "v2-alpha-tpuv5",
    "v6e": "v2-alpha-tpuv6e",
}
DEFAULT_TRAIN_STEPS = 1_000_000  # per stage, as the recipe
_TPU_NAME = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")
_ZONE = re.compile(r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")
_PROJECT = re.compile(r"^(?:[a-z][-a-z0-9.]*[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$")
_ACCELERATOR = re.compile(r"^(v[0-9]+[a-z]*)-([0-9]+)$")
# The checkout the default package is built from (holds setup.py and constraints.txt).
_SOURCE_DIR = str(pathlib.Path(__file__).resolve().parents[2])


@dataclasses.dataclass(frozen=True)
class StageDef:
    """A training stage of the recipe: its number, data name and model subdirectory."""

    number: int
    data: str
    subdir: str
    flag: str


STAGE_DEFS = {
    1: StageDef(1, "cc100", "stage1-cc100", "--cc100-data"),
    2: StageDef(2, "wikipedia", "stage2-wikipedia", "--wikipedia-data"),
}


@dataclasses.dataclass(frozen=True)
class TpuOptions:
    """Everything :func:`~training.tpu.plan.build_plan` needs; see
    :func:`~training.tpu.cli.make_parser` for each field.

    Attributes:
      dry_run: print the plan instead of running it (``--dry-run``).
      vocab_size_assumed: ``vocab_size`` is the released size of ``subword``, not
        counted from ``vocab`` (a dry run with a gs:// vocabulary).
      init: the ``--init-from`` model (:class:`training.local.init_from.InitSource`):
        one stage, started from its weights staged to ``MODEL_DIR/init/``; None: the
        recipe's stages.
      learning_rate: peak learning rate (None: the recipe's for ``size``).
      max_position_embeddings: the encoder's position table (None: the recipe's 512).
    """

    project: str
    zone: str
    model_dir: str
    vocab: str
    vocab_size: int
    data: dict[int, str]
    stages: tuple[int, ...] = (1, 2)
    size: str = "base"
    subword: str = "wordpiece"
    train_steps: dict[int, int] = dataclasses.field(default_factory=dict)
    warmup_steps: int = 10_000
    tpu_name: str = ""
    accelerator_type: str = DEFAULT_ACCELERATOR
    runtime_version: str = ""
    spot: bool = False
    preemptible: bool = False
    network: str = ""
    subnetwork: str = ""
    external_ips: bool = True
    service_account: str = ""
    package: str = ""
    keep_vm: bool = False
    preflight_only: bool = False
    poll_seconds: float = 300.0
    source_dir: str = _SOURCE_DIR
    dry_run: bool = False
    vocab_size_assumed: bool = False
    init: object = None
    learning_rate: float | None = None
    max_position_embeddings: int | None = None


def hosts_of(accelerator_type: str) -> int:
    """Hosts (VMs) of a TPU slice: one per 8 TensorCores (v2-v4, v5p) or chips (v5e).

    ``v3-8`` -> 1, ``v3-32`` -> 4, ``v4-32`` -> 4.

    Raises:
      ValueError: when the name is not ``v<generation>-<count>``.
    """
    match = _ACCELERATOR.match(accelerator_type)
    if not match or int(match.group(2)) < 1:
        raise ValueError(f"accelerator type {accelerator_type!r} is not like v3-8 or v4-32")
    return max(1, math.ceil(int(match.group(2)) / 8))


def default_runtime_version(accelerator_type: str) -> str:
    """The TPU software version used when ``--runtime-version`` is not given.

    Raises:
      ValueError: for a TPU generation without a known base image.
    """
    family = accelerator_type.rsplit("-", 1)[0]
    if family not in RUNTIME_BY_FAMILY:
        raise ValueError(f"no default runtime for {accelerator_type!r}; pass --runtime-version")
    return RUNTIME_BY_FAMILY[family]


def default_tpu_name(model_dir: str) -> str:
    """``bertjp-<last part of --model-dir>``, lowercased to a valid TPU node id."""
    name = model_dir.rstrip("/").rsplit("/", 1)[-1].lower()
    slug = re.sub(r"[^a-z0-9]+", "-", name).strip("-") or "train"
    return ("bertjp-" + slug)[:63].rstrip("-")


def _check_gs(flag: str, value: str) -> None:
    """Raises ValueError unless ``value`` is a ``gs://`` path."""
    if not value.startswith("gs://") or len(value) <= len("gs://"):
        raise ValueError(f"{flag} must be a gs:// path (the TPU VM reads and writes Cloud "
                         f"Storage), got {value!r}")


def _check_names(options: TpuOptions) -> None:
    """Raises ValueError for an invalid TPU name, zone or project, or spot + preemptible."""
    if not _TPU_NAME.match(options.tpu_name):
        raise ValueError(f"--tpu-name {options.tpu_name!r} is not a valid TPU name (1-63 of "
                         "a-z, 0-9 and '-', starting with a letter)")
    if not _ZONE.match(options.zone):
        raise ValueError(f"--zone {options.zone!r} is not a zone like europe-west4-a")
    if not _PROJECT.match(options.project):
        raise ValueError(f"--project {options.project!r} is not a project id")
    if options.spot and options.preemptible:
        raise ValueError("--spot and --preemptible exclude each other")


def validate(options: TpuOptions) -> None:
    """Checks names, paths and the stages' data.

    Raises:
      ValueError: naming the flag to fix.
    """
    _check_names(options)
    hosts_of(options.accelerator_type)
    _check_gs("--model-dir", options.model_dir)
    if not options.stages:
        raise ValueError("--stages names no stage (use 1, 2 or 1,2)")
    for number in options.stages:
        stage = STAGE_DEFS[number]
        if not options.data.get(number):
            raise ValueError(f"stage {number} ({stage.data}) needs {stage.flag} gs://PREFIX")
        _check_gs(stage.flag, options.data[number])


# --------------------------------------------------------------------------- from flags


def _joined(values: list[str] | None, default: str) -> str:
    """The values of a repeatable comma-list flag as one comma-separated text."""
    return ",".join(values) if values else default


def _parse_stages(text: str) -> tuple[int, ...]:
    """``--stages`` as sorted stage numbers.

    Raises:
      ValueError: for anything but 1, 2 or 1,2.
    """
    try:
        stages = sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        stages = [0]
    if not stages or any(s not in STAGE_DEFS for s in stages):
        raise ValueError(f"--stages {text!r} must be 1, 2 or 1,2")
    return tuple(stages)


def _parse_train_steps(text: str) -> dict[int, int]:
    """``--train-steps`` as ``{stage: steps}`` (empty: the default for every stage).

    Raises:
      ValueError: unless one or two positive numbers.
    """
    if not text:
        return {}
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values) < 1:
        raise ValueError(f"--train-steps {text!r} must be N (every stage) or N1,N2 (stage 1, "
                         "stage 2), positive")
    return {1: values[0], 2: values[-1]}


def _vocab_size(args: argparse.Namespace) -> tuple[int, bool]:
    """(vocab size, whether it is assumed): ``--vocab-size``, the released size of
    ``--subword`` in a dry run with a gs:// vocabulary, else the lines of ``--vocab``."""
    from training import configs

    if args.vocab_size:
        return args.vocab_size, False
    if args.dry_run and args.vocab.startswith("gs://"):
        return configs.SUBWORD_VOCAB_SIZES[args.subword], True
    return configs.vocab_size_of(args.vocab), False


def _init_stage(args: argparse.Namespace) -> tuple[int, ...]:
    """The one stage of an ``--init-from`` run: ``--stages`` or the data flag given.

    Raises:
      ValueError: unless exactly one stage is chosen.
    """
    if args.stages:
        stages = _parse_stages(_joined(args.stages, ""))
    else:
        stages = tuple(n for n, d in ((1, args.cc100_data), (2, args.wikipedia_data)) if d)
    if len(stages) != 1:
        raise ValueError("--init-from trains one stage from the model's weights; give one of "
                         "--cc100-data and --wikipedia-data, or choose it with --stages 1 or "
                         "--stages 2")
    return stages


def _preset_steps(args: argparse.Namespace, stage: int) -> int:
    """``--preset continue``'s steps: ceil(--epochs x the stage manifest's instances /
    the stage's global batch)."""
    from bertjp.manifest import records_spec
    from training import configs, preflight

    prefix = args.cc100_data if stage == 1 else args.wikipedia_data
    try:
        manifest = preflight.load_manifest(prefix)
    except Exception as err:  # noqa: BLE001 - say which flag avoids reading it
        raise ValueError(f"--preset continue reads the instance count of "
                         f"{preflight.manifest_path(prefix)} ({err}); or pass --train-steps"
                         ) from None
    epochs = configs.CONTINUE_EPOCHS if args.epochs is None else args.epochs
    return configs.continue_steps(epochs, records_spec(manifest).instances,
                                  configs.DATA[STAGE_DEFS[stage].data].global_batch_size)


def _continue_settings(args: argparse.Namespace, stages: tuple[int, ...]
                       ) -> tuple[dict[int, int], int, float | None]:
    """(train steps, warmup steps, learning rate): the flags, filled in by ``--preset``."""
    from training import configs

    steps = _parse_train_steps(_joined(args.train_steps, ""))
    warmup, rate = args.warmup_steps, args.learning_rate
    if args.epochs is not None and args.preset != "continue":
        raise ValueError("--epochs sets the steps of --preset continue; pass --preset continue "
                         "or --train-steps")
    if args.preset != "continue":
        return steps, 10_000 if warmup is None else warmup, rate
    if not steps:
        if len(stages) != 1:
            raise ValueError("--preset continue derives the steps of one stage; choose it "
                             "with --stages or pass --train-steps")
        steps = {n: _preset_steps(args, stages[0]) for n in STAGE_DEFS}
    if warmup is None:
        warmup = configs.continue_warmup(min(steps[n] for n in stages))
    return steps, warmup, configs.CONTINUE_LEARNING_RATE if rate is None else rate


def options_from_args(args: argparse.Namespace) -> TpuOptions:
    """Validated :class:`TpuOptions` of parsed arguments (reads --vocab for its size;
    with ``--init-from`` the model's metadata, with ``--preset continue`` the manifest).

    Raises:
      ValueError: for invalid values, naming the flag.
    """
    from training import configs
    from training.local import init_from

    size = args.size or "base"
    configs.model_size(size)
    accelerator = args.accelerator_type
    hosts_of(accelerator)
    init = None
    if args.init_from:
        init = init_from.resolve(args.init_from)
        size = init_from.size_for(init, args.size)
        stages = _init_stage(args)
        vocab_size, assumed = init.vocab_size, False
    else:
        stages = _parse_stages(_joined(args.stages, "1,2"))
        vocab_size, assumed = _vocab_size(args)
    train_steps, warmup, rate = _continue_settings(args, stages)
    options = TpuOptions(
        project=args.project, zone=args.zone, model_dir=args.model_dir, vocab=args.vocab,
        vocab_size=vocab_size, data={1: args.cc100_data, 2: args.wikipedia_data},
        stages=stages, size=size, init=init, learning_rate=rate,
        max_position_embeddings=init.max_position_embeddings if init else None,
        subword=args.subword, train_steps=train_steps, warmup_steps=warmup,
        tpu_name=args.tpu_name or default_tpu_name(args.model_dir),
        accelerator_type=accelerator,
        runtime_version=args.runtime_version or default_runtime_version(accelerator),
        spot=args.spot, preemptible=args.preemptible, network=args.network,
        subnetwork=args.subnetwork, external_ips=not args.no_external_ip,
        service_account=args.service_account, package=args.package, keep_vm=args.keep_vm,
        preflight_only=args.preflight_only, poll_seconds=args.poll_seconds,
        dry_run=args.dry_run, vocab_size_assumed=assumed)
    validate(options)
    return options
