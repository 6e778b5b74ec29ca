"""The one source of every default that more than one place uses.

Flags, config dataclasses, the estimate and the benchmarks read their defaults
from here, so that a default cannot say one thing on the command line and another
in the library. Each says whose default it is: the reference script's
(cl-tohoku/bert-japanese ``create_pretraining_data.py``, itself google-research/bert's),
the v3 recipe's (the reference README's commands), or ours.
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "BUCKET_DOCUMENTS",
    "CHUNK_BYTES",
    "EXCERPT_CHARS",
    "GZIP_LEVEL",
    "MAX_LINE_BYTES",
    "MAX_POSITION_EMBEDDINGS",
    "PRESETS",
    "PretrainingDefaults",
    "REFERENCE_SCRIPT",
    "Preset",
]

# --- ours ------------------------------------------------------------------------------
MAX_LINE_BYTES = 64 << 20
"""Input lines longer than this go to the dead letters unread (``--max-line-bytes``)."""
CHUNK_BYTES = 16 << 20
"""The most record bytes one worker sorts at once when writing shards (``--chunk-mb``)."""
GZIP_LEVEL = 6
"""gzip level of every compressed shard (Python's and the reference's default)."""
EXCERPT_CHARS = 200
"""Characters of a bad record kept in its dead letter (and of a too-long line)."""
MAX_POSITION_EMBEDDINGS = 512
"""BERT's position embeddings: the longest sequence a model of the recipe can read."""
BUCKET_DOCUMENTS = 256
"""Documents per random-next bucket of ``pretraining-data`` (``--bucket-documents``)."""


# --- pretraining data ---------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PretrainingDefaults:
    """``create_pretraining_data.py``'s flags and their values."""

    max_seq_length: int
    max_predictions_per_seq: int
    masked_lm_prob: float
    short_seq_prob: float
    dupe_factor: int
    random_seed: int


REFERENCE_SCRIPT = PretrainingDefaults(
    max_seq_length=128, max_predictions_per_seq=20, masked_lm_prob=0.15, short_seq_prob=0.1,
    dupe_factor=10, random_seed=12345)
"""The reference script's own defaults: ``bertjp pretraining-data``'s defaults."""


@dataclasses.dataclass(frozen=True)
class Preset:
    """One stage of the v3 recipe (``pretraining-data --preset NAME``)."""

    name: str
    max_seq_length: int
    max_predictions_per_seq: int
    dupe_factor: int
    description: str


PRESETS = {
    "v3-cc100": Preset("v3-cc100", 128, 19, 5,
                       "stage 1 of the v3 recipe: CC-100, seq 128, 19 predictions, dupe 5"),
    "v3-wikipedia": Preset("v3-wikipedia", 512, 76, 30,
                           "stage 2 of the v3 recipe: Wikipedia, seq 512, 76 predictions, "
                           "dupe 30"),
}
"""The v3 recipe's two stages (recipe §8: the flags its README passes)."""
