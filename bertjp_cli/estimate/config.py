"""What ``bertjp estimate`` is asked: its flags, read once (see :mod:`.cli`)."""

from __future__ import annotations

import dataclasses

from bertjp_cli.estimate.prices import MachineType, machine_type
from bertjp_cli.estimate.sample import MB

__all__ = ["EstimateConfig"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class EstimateConfig:
    """The estimate's settings; the defaults are the command line's (``--help``).

    Attributes:
      inputs: the raw input's paths or globs, local or ``gs://``.
      kind: ``auto``, ``wiki`` or ``cc100``.
      sample_mb: decompressed MB of the first file to measure on.
      project_mb: decompressed MB to project for, instead of the matched size.
      workers: Dataflow workers.
      machine_type: the workers' machine type, e.g. ``n1-standard-4``.
      disk_gb: persistent disk per worker.
      ssd: SSD persistent disk.
      core_speed: a Dataflow vCPU's speed relative to this machine's core.
      startup_minutes: the fixed start-up of each job.
      corpus_shards: corpus shards; ``None``: the corpus command's default.
      data_shards: pretraining-data shards; ``None``: as many as corpus shards.
      mecab_dict: the dictionary of the wiki sentence splitting.
      vocab_sample_sentences: the sentences train-vocab counts.
      vocab: the tokenizer directory or ``vocab.txt``; ``None``: the character one.
      subword: ``wordpiece``, ``character`` or ``None`` (the directory's, or the default).
      dupe_factor: pretraining-data's passes over the corpus.
      max_seq_length: tokens per instance.
      max_predictions_per_seq: most masked tokens per instance.
      bucket_documents: documents per random-next bucket.
    """

    inputs: tuple[str, ...]
    kind: str
    sample_mb: float
    project_mb: float | None
    workers: int
    machine_type: str
    disk_gb: float
    ssd: bool
    core_speed: float
    startup_minutes: float
    corpus_shards: int | None
    data_shards: int | None
    mecab_dict: str
    vocab_sample_sentences: int
    vocab: str | None
    subword: str | None
    dupe_factor: int
    max_seq_length: int
    max_predictions_per_seq: int
    bucket_documents: int

    def __post_init__(self):
        if not self.inputs:
            raise ValueError("at least one --input is needed")
        self.machine()  # fails now on an unknown machine type

    def machine(self) -> MachineType:
        """The workers' machine type.

        Raises:
          ValueError: an unknown machine type (the message lists the known ones).
        """
        return machine_type(self.machine_type)

    @property
    def sample_bytes(self) -> int:
        """Decompressed bytes of the sample (at least one)."""
        return max(1, int(self.sample_mb * MB))
