"""Dataflow's price list and the machine types the estimate knows.

Pure (no I/O, no Beam). :mod:`bertjp_cli.estimate.project` bills worker-hours
and shuffled bytes at these prices. Sizes are in GB = 10**9 bytes.
"""

from __future__ import annotations

import dataclasses
import difflib

__all__ = [
    "DATAFLOW_BATCH_US_CENTRAL1",
    "MACHINE_TYPES",
    "MachineType",
    "Prices",
    "machine_type",
    "memory_warning",
]

PRICES_DATE = "2026-11-22"
PRICES_SOURCE = "https://cloud.google.com/dataflow/pricing"


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
    """The known machine types, one ``family-{vCPU counts}`` per family."""
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


