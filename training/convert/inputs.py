"""The converter's inputs: the checkpoint prefix and the vocabulary directory."""

from __future__ import annotations

import json
import os

from bertjp.vocab_files import parse_vocab

__all__ = ["find_checkpoint", "read_vocab_dir", "subword_type"]


def find_checkpoint(path: str) -> str:
    """The checkpoint prefix of a model dir (its latest checkpoint) or of a prefix.

    Raises:
      FileNotFoundError: when there is no checkpoint at ``path``.
    """
    import tensorflow as tf

    path = path.rstrip("/") if len(path) > 1 else path
    if path.endswith(".index"):
        path = path[: -len(".index")]
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(
                f"no checkpoint in {path} (expected a 'checkpoint' file and ckpt-N.index, "
                "as Model Garden's trainer writes them)")
        return latest
    if not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"no checkpoint at {path} (neither a directory nor a "
                                f"checkpoint prefix with {path}.index)")
    return path


def read_vocab_dir(vocab_dir: str) -> tuple[bytes, list[str], dict | None]:
    """``vocab.txt`` bytes, its tokens and the ``tokenizer_config.json`` (or None).

    Raises:
      FileNotFoundError: when ``vocab_dir/vocab.txt`` does not exist.
    """
    import tensorflow as tf

    path = os.path.join(vocab_dir, "vocab.txt")
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"no vocab.txt in {vocab_dir}")
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    tokens = parse_vocab(data)
    config_path = os.path.join(vocab_dir, "tokenizer_config.json")
    config = None
    if tf.io.gfile.exists(config_path):
        with tf.io.gfile.GFile(config_path, "r") as f:
            config = json.loads(f.read())
    return data, tokens, config


def subword_type(tokens: list[str], tokenizer_config: dict | None) -> str:
    """``character`` when the vocab dir's config says so or no token starts with ``##``."""
    if tokenizer_config and tokenizer_config.get("subword_tokenizer_type"):
        return str(tokenizer_config["subword_tokenizer_type"])
    return "wordpiece" if any(t.startswith("##") for t in tokens) else "character"
