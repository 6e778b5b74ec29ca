"""Projections: measured rates onto the whole input and a Dataflow cluster.

``bertjp estimate`` measures how many CPU seconds each phase of a stage needs per
MB on one core (:mod:`bertjp_cli.estimate.measure`); :func:`stage_rates` turns the
measurement into :class:`StageRate` s and :func:`projection` turns those into
core-hours, wall time, worker-hours and US dollars for a cluster.

The model, per stage (one Dataflow job each, run one after another):

* a stage is a sequence of *phases* separated by shuffles (a batch ``GroupByKey``
  is a barrier, so phases do not overlap);
* a phase needs ``seconds_per_mb × stage input MB / core_speed`` core-seconds and
  runs on ``min(cores, max_parallel)`` cores: all of them, or one per input file
  (a compressed file is read by one worker), or one per output shard (each shard
  is gzipped by one worker);
* wall time = a fixed start-up (VMs, container, packages; ~4 minutes) + the
  phases' wall times; every worker is billed for the whole wall time (a fixed
  ``--num_workers``; autoscaling makes the narrow phases cheaper);
* cost = worker-hours × (vCPUs × vCPU price + memory GB × memory price + disk GB
  × disk price) + shuffled GB × the Dataflow Shuffle price (:mod:`.prices`).

Sizes are in MB = 10**6 bytes and GB = 10**9 bytes. Everything above
:func:`stage_rates` is pure (no I/O, no Beam).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Sequence

from bertjp_cli.estimate.prices import DATAFLOW_BATCH_US_CENTRAL1, MachineType, Prices, machine_type
from bertjp_cli.estimate.sample import MB

if TYPE_CHECKING:
    from bertjp_cli.estimate.measure import Measured

__all__ = [
    "STARTUP_MINUTES",
    "Cost",
    "Phase",
    "PhaseProjection",
    "Projection",
    "StageProjection",
    "StageRate",
    "projection",
    "stage_details",
    "stage_rates",
]

STARTUP_MINUTES = 4.0
"""Minutes from submission until workers process data (VM boot, SDK container,
``--setup_file`` install); typical for a Python batch job, not measured."""


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase of a stage: work between two shuffles.

    Attributes:
      name: e.g. ``read``, ``split``, ``gzip``.
      seconds_per_mb: CPU seconds on one core per MB of the *stage's* input.
      max_parallel: the most cores that can share the work (input files, output
        shards); ``None``: every core of the cluster.
    """

    name: str
    seconds_per_mb: float
    max_parallel: int | None = None

    def __post_init__(self):
        if self.seconds_per_mb < 0:
            raise ValueError(f"phase {self.name!r}: seconds_per_mb must be >= 0")
        if self.max_parallel is not None and self.max_parallel < 1:
            raise ValueError(f"phase {self.name!r}: max_parallel must be >= 1")


@dataclasses.dataclass(frozen=True)
class StageRate:
    """The measured rates of one stage.

    Attributes:
      name: the command, e.g. ``wiki-corpus``.
      phases: its phases, in order.
      output_per_input: MB written per MB of the stage's input (uncompressed).
      shuffle_per_input: MB through Dataflow Shuffle per MB of input; by default
        ``output_per_input``.
      input_scale: the stage's input MB per MB of the job's input (1 for the
        first stage; the corpus ratio for a stage that reads the corpus).
    """

    name: str
    phases: tuple[Phase, ...]
    output_per_input: float = 1.0
    shuffle_per_input: float | None = None
    input_scale: float = 1.0

    @property
    def seconds_per_mb(self) -> float:
        """CPU seconds per input MB over all phases."""
        return sum(p.seconds_per_mb for p in self.phases)


@dataclasses.dataclass(frozen=True)
class Cost:
    """US dollars by resource."""

    vcpu: float = 0.0
    memory: float = 0.0
    disk: float = 0.0
    shuffle: float = 0.0

    @property
    def total(self) -> float:
        """The sum of the resources."""
        return self.vcpu + self.memory + self.disk + self.shuffle

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.vcpu + other.vcpu, self.memory + other.memory,
                    self.disk + other.disk, self.shuffle + other.shuffle)

    def to_dict(self) -> dict:
        """The cost as a JSON-ready dict, with its total."""
        return {**dataclasses.asdict(self), "total": self.total}


@dataclasses.dataclass(frozen=True)
class PhaseProjection:
    """A phase at full scale: its core-hours, the cores it can use, its wall hours."""

    name: str
    core_hours: float
    cores: int
    wall_hours: float


@dataclasses.dataclass(frozen=True)
class StageProjection:
    """One stage at full scale (see the module docstring for the model)."""

    name: str
    input_mb: float
    output_mb: float
    shuffle_gb: float
    phases: tuple[PhaseProjection, ...]
    core_hours: float
    wall_hours: float
    worker_hours: float
    cost: Cost

    def to_dict(self) -> dict:
        """The stage as a JSON-ready dict."""
        data = dataclasses.asdict(self)
        data["cost"] = self.cost.to_dict()
        return data


@dataclasses.dataclass(frozen=True)
class Projection:
    """Every stage at full scale on one cluster, and the totals (stages run in turn)."""

    stages: tuple[StageProjection, ...]
    machine: MachineType
    workers: int
    disk_gb: float
    ssd: bool
    prices: Prices
    startup_minutes: float
    core_speed: float

    @property
    def cores(self) -> int:
        """SDK processes of the cluster: one per vCPU."""
        return self.workers * self.machine.vcpus

    @property
    def core_hours(self) -> float:
        """Core-hours of every stage."""
        return sum(s.core_hours for s in self.stages)

    @property
    def wall_hours(self) -> float:
        """Wall hours of the stages, run one after another."""
        return sum(s.wall_hours for s in self.stages)

    @property
    def worker_hours(self) -> float:
        """Worker-hours of every stage."""
        return sum(s.worker_hours for s in self.stages)

    @property
    def cost(self) -> Cost:
        """The cost of every stage."""
        return sum((s.cost for s in self.stages), Cost())

    def to_dict(self) -> dict:
        """Cluster, stages, totals, prices, start-up and core speed, JSON-ready."""
        return {
            "cluster": {"workers": self.workers, "machine_type": dataclasses.asdict(self.machine),
                        "sdk_processes": self.cores, "disk_gb": self.disk_gb,
                        "disk_type": "pd-ssd" if self.ssd else "pd-standard"},
            "stages": [s.to_dict() for s in self.stages],
            "totals": {"core_hours": self.core_hours, "wall_hours": self.wall_hours,
                       "worker_hours": self.worker_hours, "cost": self.cost.to_dict()},
            "prices": dataclasses.asdict(self.prices),
            "startup_minutes": self.startup_minutes,
            "core_speed": self.core_speed,
        }


def _project_phase(phase: Phase, input_mb: float, cores: int,
                   core_speed: float) -> PhaseProjection:
    """A phase at full scale on ``cores`` cores (or as many as it can use)."""
    core_hours = phase.seconds_per_mb * input_mb / core_speed / 3600
    usable = cores if phase.max_parallel is None else min(cores, phase.max_parallel)
    return PhaseProjection(phase.name, core_hours, usable, core_hours / usable)


def _stage_cost(worker_hours: float, shuffle_gb: float, machine: MachineType,
                disk_gb: float, ssd: bool, prices: Prices) -> Cost:
    """What a stage's worker-hours and shuffle cost."""
    disk_price = prices.pd_ssd_gb_hour if ssd else prices.pd_standard_gb_hour
    return Cost(vcpu=worker_hours * machine.vcpus * prices.vcpu_hour,
                memory=worker_hours * machine.memory_gb * prices.memory_gb_hour,
                disk=worker_hours * disk_gb * disk_price,
                shuffle=shuffle_gb * prices.shuffle_gb)


def _project_stage(rate: StageRate, input_mb: float, workers: int, machine: MachineType,
                   options: dict) -> StageProjection:
    """A stage at full scale: its phases one after another after the start-up."""
    stage_mb = input_mb * rate.input_scale
    cores = workers * machine.vcpus
    phases = tuple(_project_phase(p, stage_mb, cores, options["core_speed"])
                   for p in rate.phases)
    wall = options["startup_minutes"] / 60 + sum(p.wall_hours for p in phases)
    shuffle_per_input = (rate.output_per_input if rate.shuffle_per_input is None
                         else rate.shuffle_per_input)
    shuffle_gb = stage_mb * shuffle_per_input / 1000
    cost = _stage_cost(workers * wall, shuffle_gb, machine, options["disk_gb"],
                       options["ssd"], options["prices"])
    return StageProjection(rate.name, stage_mb, stage_mb * rate.output_per_input, shuffle_gb,
                           phases, sum(p.core_hours for p in phases), wall, workers * wall,
                           cost)


def projection(
    rates: Sequence[StageRate],
    input_mb: float,
    workers: int,
    machine: MachineType | str,
    disk_gb: float = 50.0,
    prices: Prices = DATAFLOW_BATCH_US_CENTRAL1,
    *,
    ssd: bool = False,
    startup_minutes: float = STARTUP_MINUTES,
    core_speed: float = 1.0,
) -> Projection:
    """Projects measured stage rates onto the whole input and a Dataflow cluster.

    Args:
      rates: the stages, in the order they run.
      input_mb: MB of (decompressed) job input.
      workers: Dataflow workers (``--num_workers``), all billed for each whole job.
      machine: the workers' machine type or its name.
      disk_gb: persistent disk per worker (``--disk_size_gb``).
      prices: the price list.
      ssd: SSD persistent disk instead of standard.
      startup_minutes: the fixed start-up of each job.
      core_speed: a Dataflow core's speed relative to the core the rates were
        measured on (2.0: twice as fast).

    Returns:
      The :class:`Projection`.

    Raises:
      ValueError: an unknown machine type or a non-positive size, count or speed.
    """
    if isinstance(machine, str):
        machine = machine_type(machine)
    if workers < 1 or input_mb < 0 or disk_gb < 0 or core_speed <= 0 or startup_minutes < 0:
        raise ValueError("workers and core_speed must be positive; input_mb, disk_gb and "
                         "startup_minutes must be >= 0")
    options = {"core_speed": core_speed, "startup_minutes": startup_minutes,
               "disk_gb": disk_gb, "ssd": ssd, "prices": prices}
    stages = tuple(_project_stage(r, input_mb, workers, machine, options) for r in rates)
    return Projection(stages, machine, workers, disk_gb, ssd, prices, startup_minutes,
                      core_speed)


# ----------------------------------------------------------------------------- from the sample


def _phases(seconds: dict, sample_mb: float, limits: dict) -> tuple[Phase, ...]:
    """The measured phases, at the CPU seconds they took on ``sample_mb``.

    ``limits`` orders them and gives each the most cores it can use (``None``: all).
    """
    return tuple(Phase(name, seconds[name] / sample_mb, cores)
                 for name, cores in limits.items() if name in seconds)


def _vocab_input_mb(m: Measured, input_mb: float, sample_sentences: int) -> float:
    """MB of the tokenizer-training sample: ``sample_sentences`` corpus lines, or all."""
    corpus_sentences = input_mb * m.corpus_ratio * MB / m.corpus.output_bytes * m.vocab.sentences
    bytes_per_sentence = m.vocab.input_bytes / m.vocab.sentences
    return min(corpus_sentences, sample_sentences) * bytes_per_sentence / MB


def stage_rates(m: Measured, input_mb: float, files: int,
                vocab_sample_sentences: int) -> list[StageRate]:
    """The three stages' rates, measured on the sample.

    Args:
      m: the measurement.
      input_mb: MB of (decompressed) job input.
      files: the input files (each read by one core).
      vocab_sample_sentences: the sentences train-vocab counts.
    """
    sample_mb, corpus_mb = m.sample.nbytes / MB, m.corpus.output_bytes / MB
    first = StageRate(
        m.corpus.name,
        _phases(m.corpus.seconds, sample_mb,
                {"read": files, "split": None, "write": m.corpus_shards}),
        m.corpus_ratio, m.corpus.shuffle_bytes / m.sample.nbytes)
    vocab_mb = _vocab_input_mb(m, input_mb, vocab_sample_sentences)
    second = StageRate(
        "train-vocab",
        _phases(m.vocab.seconds, m.vocab.input_bytes / MB, {"read": 1, "count": None}),
        0.0, m.vocab.shuffle_bytes / m.vocab.input_bytes,
        vocab_mb / input_mb if input_mb else 0.0)
    third = StageRate(
        "pretraining-data",
        _phases(m.data.seconds, corpus_mb, {"read": m.corpus_shards, "tokenize": None,
                                            "instances": None, "write": m.data_shards}),
        m.data.record_bytes / m.corpus.output_bytes,
        m.data.shuffle_bytes / m.corpus.output_bytes, m.corpus_ratio)
    return [first, second, third]


def _measured_rates(rate: StageRate, seconds: dict, sample_mb: float) -> dict:
    """What a stage's rates were measured on: MB, CPU seconds per phase, MB/s per core."""
    total = sum(seconds.values())
    return {"sample_input_mb": sample_mb, "cpu_seconds": dict(seconds),
            "seconds_per_mb": {p.name: p.seconds_per_mb for p in rate.phases},
            "mb_per_s_per_core": sample_mb / total if total else None}


def stage_details(m: Measured, rates: Sequence[StageRate], stages: list[dict]) -> None:
    """Adds what was measured, and per-stage extras, to the projected stage dicts."""
    corpus, vocab, data = m.corpus, m.vocab, m.data
    seconds = [corpus.seconds, vocab.seconds, data.seconds]
    sample_mbs = [m.sample.nbytes / MB, vocab.input_bytes / MB, corpus.output_bytes / MB]
    for stage, rate, secs, sample_mb in zip(stages, rates, seconds, sample_mbs, strict=True):
        stage["measured"] = _measured_rates(rate, secs, sample_mb)
    stages[0]["written_gzip_mb"] = stages[0]["output_mb"] * corpus.gzip_bytes / corpus.output_bytes
    stages[1]["sentences"] = stages[1]["input_mb"] * MB * vocab.sentences / vocab.input_bytes
    stages[1]["measured"].update(trainer_cpu_seconds=vocab.train_seconds,
                                 distinct_words=vocab.distinct_words)
    per_corpus_mb = data.instances / (corpus.output_bytes / MB)
    stages[2].update({
        "instances": per_corpus_mb * stages[2]["input_mb"],
        "instances_per_corpus_mb": per_corpus_mb,
        "bytes_per_record": data.record_bytes / max(1, data.instances),
        "written_gzip_mb": stages[2]["output_mb"] * data.gzip_bytes / max(1, data.record_bytes),
    })
    cpu = sum(data.seconds.values())
    stages[2]["measured"]["instances_per_s_per_core"] = data.instances / cpu if cpu else None
