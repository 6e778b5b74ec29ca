"""What ``bertjp train local`` checks before it trains: the manifests against the
experiment and the files (:func:`preflight_problems`), and a model dir's earlier model
(:func:`check_model_dir`)."""

from __future__ import annotations

import os
from typing import Any

from bertjp.manifest import Manifest
from training.local.options import LocalOptions, default_manifest_path

__all__ = [
    "ManifestGroup",
    "check_model_dir",
    "load_manifests",
    "preflight_problems",
    "vocab_size",
    "write_params",
]

# (manifest path, manifest, the --input patterns it describes)
ManifestGroup = tuple[str, Manifest, list[str]]


def load_manifests(options: LocalOptions) -> list[ManifestGroup]:
    """The manifest of each ``--input`` pattern: ``--manifest`` for every pattern, else
    ``PREFIX.manifest.json`` of each pattern.

    Raises:
      FileNotFoundError: naming the missing manifest.
    """
    from training import preflight

    by_path: dict[str, list[str]] = {}
    for pattern in options.inputs:
        path = options.manifest or default_manifest_path(pattern)
        by_path.setdefault(path, []).append(pattern)
    groups = []
    for path, described in by_path.items():
        try:
            groups.append((path, preflight.load_manifest(path), described))
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{e}; or pass --manifest") from None
    return groups


def preflight_problems(options: LocalOptions, groups: list[ManifestGroup],
                       config) -> list[str]:
    """Every manifest against the experiment, and the files the patterns match."""
    from training import preflight

    problems = []
    for path, manifest, _ in groups:
        found = preflight.check(manifest, config, num_hosts=1, vocab_dir=options.vocab)
        problems += [f"{path}: {p}" for p in found] if len(groups) > 1 else found
    problems += preflight.file_problems(groups, "--input")
    if options.validation_inputs is not None:
        problems += preflight.match_files(list(options.validation_inputs),
                                          "--validation-input")[1]
    return problems


def vocab_size(options: LocalOptions, manifest: Manifest) -> int:
    """The lines of ``--vocab``, else the manifest's vocab size.

    Raises:
      ValueError: when neither gives a size.
    """
    from training import configs

    if options.vocab:
        return configs.vocab_size_of(options.vocab)
    size = manifest.vocab_size
    if size is None:
        raise ValueError("the manifest has no vocab_size; pass --vocab")
    return int(size)


def _plain_model(config) -> dict:
    """``task.model`` of a config as plain YAML data."""
    import yaml

    from training import configs

    return yaml.safe_load(configs.to_yaml(config))["task"]["model"]


def check_model_dir(config, model_dir: str) -> None:
    """Refuses a model dir whose checkpoint belongs to a different model.

    Raises:
      ValueError: naming the first settings of ``task.model`` that differ.
    """
    import tensorflow as tf
    import yaml

    params = os.path.join(model_dir, "params.yaml")
    if not (tf.train.latest_checkpoint(model_dir) and tf.io.gfile.exists(params)):
        return
    with tf.io.gfile.GFile(params) as f:
        old = (yaml.safe_load(f) or {}).get("task", {}).get("model")
    new = _plain_model(config)
    if old is not None and old != new:
        differ = sorted(_differences(old, new))[:5]
        raise ValueError(f"{model_dir} holds checkpoints of a different model (task.model "
                         f"differs at {', '.join(differ)}); use a new --model-dir")


def _differences(old: Any, new: Any, prefix: str = "task.model") -> list[str]:
    """The dotted paths at which two plain values differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for key in set(old) | set(new)
                for d in _differences(old.get(key), new.get(key), f"{prefix}.{key}")]
    return [] if old == new else [prefix]


def write_params(config, model_dir: str) -> str:
    """Writes the experiment config to ``MODEL_DIR/params.yaml``; returns its path."""
    import tensorflow as tf

    from training import configs

    tf.io.gfile.makedirs(model_dir)
    path = os.path.join(model_dir, "params.yaml")
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(configs.to_yaml(config))
    return path
