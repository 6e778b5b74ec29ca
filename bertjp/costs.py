"""What a job costs on Dataflow: machine types, list prices and the projection of rates.

Pure (no I/O, no Beam): ``bertjp estimate`` measures how many CPU seconds each
phase of a stage needs per MB on one core, and :func:`projection` turns those
rates into core-hours, wall time, worker-hours and US dollars for a cluster.

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
  × disk price) + shuffled GB × the Dataflow Shuffle price.

Sizes are in MB = 10**6 bytes and GB = 10**9 bytes.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Sequence

__all__ = [
    "DATAFLOW_BATCH_US_CENTRAL1",
    "MACHINE_TYPES",
    "Cost",
    "MachineType",
    "Phase",
    "PhaseProjection",
    "Prices",
    "Projection",
    "StageProjection",
    "StageRate",
    "machine_type",
    "memory_warning",
    "projection",
]

PRICES_DATE = "2026-11-22"
PRICES_SOURCE = "https://cloud.google.com/dataflow/pricing"
STARTUP_MINUTES = 4.0
"""Minutes from submission until workers process data (VM boot, SDK container,
``--setup_file`` install); typical for a Python batch job, not measured."""


@dataclasses.dataclass(frozen=True)
class Prices:
    """Dataflow batch list prices in USD, region us-central1.

    The defaults are the Dataflow pricing page's (https://cloud.google.com/dataflow/pricing)
    long-standing us-central1 list prices for batch workers and service-based
    Dataflow Shuffle, written down on 2026-11-22 on a machine without network
    access: **list prices to be checked** against the page before a budget is set.
    No discounts are applied (committed use, Shuffle volume tiers, FlexRS), so the
    figures are an upper bound for this region; other regions cost more or less.

    Attributes:
      vcpu_hour: one worker vCPU for an hour (batch).
      memory_gb_hour: one GB of worker memory for an hour (batch).
      pd_standard_gb_hour: one GB of standard persistent disk for an hour.
      pd_ssd_gb_hour: one GB of SSD persistent disk for an hour.
      shuffle_gb: one GB of data processed by Dataflow Shuffle (batch).
      region: the region of these prices.
      date: when they were written down.
      source: where they come from.
    """

    vcpu_hour: float = 0.056
    memory_gb_hour: float = 0.003557
    pd_standard_gb_hour: float = 0.000054
    pd_ssd_gb_hour: float = 0.000298
    shuffle_gb: float = 0.011
    region: str = "us-central1"
    date: str = PRICES_DATE
    source: str = PRICES_SOURCE


DATAFLOW_BATCH_US_CENTRAL1 = Prices()


@dataclasses.dataclass(frozen=True)
class MachineType:
    """A Compute Engine machine type.

    Attributes:
      name: e.g. ``n1-standard-4``.
      vcpus: virtual CPUs; Dataflow runs one Python SDK process per vCPU.
      memory_gb: memory in GB.
    """

    name: str
    vcpus: int
    memory_gb: float

    @property
    def memory_per_vcpu(self) -> float:
        """GB of memory per vCPU, i.e. per SDK process."""
        return self.memory_gb / self.vcpus


# family -> (GB per vCPU, vCPU counts)
_FAMILIES = {
    "n1-standard": (3.75, (1, 2, 4, 8, 16, 32)),
    "n1-highmem": (6.5, (2, 4, 8, 16)),
    "n1-highcpu": (0.9, (2, 4, 8, 16, 32)),
    "n2-standard": (4.0, (2, 4, 8, 16, 32)),
    "n2-highmem": (8.0, (2, 4, 8, 16)),
    "n2-highcpu": (1.0, (2, 4, 8, 16, 32)),
    "e2-standard": (4.0, (2, 4, 8, 16)),
    "e2-highcpu": (1.0, (2, 4, 8, 16)),
    "c2-standard": (4.0, (4, 8, 16, 30)),
}

MACHINE_TYPES: dict[str, MachineType] = {
    f"{family}-{n}": MachineType(f"{family}-{n}", n, round(per_vcpu * n, 2))
    for family, (per_vcpu, counts) in _FAMILIES.items()
    for n in counts
}
"""The machine types the estimate knows, by name."""


def _known_types() -> str:
    return ", ".join(f"{family}-{{{','.join(map(str, counts))}}}"
                     for family, (_, counts) in _FAMILIES.items())


def machine_type(name: str) -> MachineType:
    """The machine type called ``name``.

    Raises:
      ValueError: an unknown name; the message suggests close names and lists the
        known ones.
    """
    try:
        return MACHINE_TYPES[name]
    except KeyError:
        close = difflib.get_close_matches(name, MACHINE_TYPES, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"unknown machine type {name!r}{hint}; known types: "
                         f"{_known_types()}") from None


def memory_warning(machine: MachineType, min_gb_per_vcpu: float = 1.0) -> str | None:
    """A warning when each SDK process would get less than ``min_gb_per_vcpu`` GB."""
    if machine.memory_per_vcpu >= min_gb_per_vcpu:
        return None
    return (f"{machine.name} has {machine.memory_per_vcpu:.2f} GB per vCPU: Dataflow runs one "
            "SDK process per vCPU, and each maps the ~250 MB MeCab dictionary and holds a "
            "16 MB write chunk and a bucket of documents (~0.4-0.55 GB peak each, README "
            "benchmarks); choose a machine with at least "
            f"{min_gb_per_vcpu:g} GB per vCPU (e.g. n1-standard or n2-standard)")


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
        return self.vcpu + self.memory + self.disk + self.shuffle

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.vcpu + other.vcpu, self.memory + other.memory,
                    self.disk + other.disk, self.shuffle + other.shuffle)

    def to_dict(self) -> dict:
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
        return self.workers * self.machine.vcpus

    @property
    def core_hours(self) -> float:
        return sum(s.core_hours for s in self.stages)

    @property
    def wall_hours(self) -> float:
        return sum(s.wall_hours for s in self.stages)

    @property
    def worker_hours(self) -> float:
        return sum(s.worker_hours for s in self.stages)

    @property
    def cost(self) -> Cost:
        return sum((s.cost for s in self.stages), Cost())

    def to_dict(self) -> dict:
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
    core_hours = phase.seconds_per_mb * input_mb / core_speed / 3600
    usable = cores if phase.max_parallel is None else min(cores, phase.max_parallel)
    return PhaseProjection(phase.name, core_hours, usable, core_hours / usable)


def _stage_cost(worker_hours: float, shuffle_gb: float, machine: MachineType,
                disk_gb: float, ssd: bool, prices: Prices) -> Cost:
    disk_price = prices.pd_ssd_gb_hour if ssd else prices.pd_standard_gb_hour
    return Cost(vcpu=worker_hours * machine.vcpus * prices.vcpu_hour,
                memory=worker_hours * machine.memory_gb * prices.memory_gb_hour,
                disk=worker_hours * disk_gb * disk_price,
                shuffle=shuffle_gb * prices.shuffle_gb)


def _project_stage(rate: StageRate, input_mb: float, workers: int, machine: MachineType,
                   options: dict) -> StageProjection:
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
