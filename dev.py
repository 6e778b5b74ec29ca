#!/usr/bin/env python3
"""Set up a development environment for bertjp and run the demo or the tests.

Usage (from the repository root, with any Python 3.11):

    python3.11 dev.py demo     # set up .venv, run the pipeline stages on the bundled sample
    python3.11 dev.py test     # set up .venv, lint (ruff), run the test suite
    python3.11 dev.py setup    # only set up .venv

The set-up is idempotent: it is skipped when ``.venv`` was already built from the
same ``constraints.txt`` and ``setup.py``. It uses only the standard library, creates
``.venv`` with ``venv``, installs ``uv`` there with pip and lets uv install the
pinned stack (``pip install -e .[all] -c constraints.txt``), compiling bytecode once
so that later imports are fast. Set ``BERTJP_INSTALLER=pip`` to use pip instead of uv.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".bertjp-setup"
UV_VERSION = "0.13.8"


def _log(msg: str) -> None:
    print(f"[dev.py] {msg}", flush=True)


def _env() -> dict[str, str]:
    """The environment for child processes: bytecode on, venv first on PATH."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    return env


def _run(cmd: list[str], **kwargs) -> None:
    _log("$ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def _fingerprint() -> str:
    h = hashlib.sha256()
    for name in ("constraints.txt", "setup.py"):
        h.update((ROOT / name).read_bytes())
    h.update(f"{sys.version} uv=={UV_VERSION}".encode())
    return h.hexdigest()


def _find_links() -> list[str]:
    """Local wheel folders pip is configured with (e.g. a CPU build of torch)."""
    links = os.environ.get("PIP_FIND_LINKS", "").split()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True, text=True, check=False,
        ).stdout
    except OSError:
        out = ""
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.endswith("find-links"):
            links += value.strip().strip("'\"").split()
    return sorted({link for link in links if link})


def setup() -> None:
    """Create .venv and install bertjp with the pinned stack, unless already done."""
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"bertjp needs Python 3.11; this is {sys.version.split()[0]}. "
                 "Run: python3.11 dev.py ...")
    fingerprint = _fingerprint()
    if STAMP.exists() and STAMP.read_text().strip() == fingerprint and PY.exists():
        _log(".venv is up to date (delete .venv to rebuild)")
        return
    start = time.monotonic()
    if VENV.exists():
        _log("constraints or setup.py changed: rebuilding .venv")
        shutil.rmtree(VENV)
    _run([sys.executable, "-m", "venv", VENV])
    env = _env()
    constraints = ["-c", ROOT / "constraints.txt"]
    target = ["-e", f"{ROOT}[all]"]
    if os.environ.get("BERTJP_INSTALLER", "uv") == "pip":
        _run([PY, "-m", "pip", "install", "-q", *target, *constraints], env=env)
    else:
        _run([PY, "-m", "pip", "install", "-q", f"uv=={UV_VERSION}"], env=env)
        uv_env = dict(env)
        cert = os.environ.get("PIP_CERT")
        if cert and "SSL_CERT_FILE" not in uv_env:
            uv_env["SSL_CERT_FILE"] = cert  # uv does not read pip's configuration
        links = [arg for link in _find_links() for arg in ("--find-links", link)]
        _run([VENV / "bin" / "uv", "pip", "install", "--python", PY, "--compile-bytecode",
              *links, *target, *constraints], env=uv_env)
    _run([PY, "-m", "pip", "check"], env=env)
    STAMP.write_text(fingerprint + "\n")
    _log(f"set-up done in {time.monotonic() - start:.0f} s")


def demo() -> None:
    """Run every stage on the bundled sample: corpora, vocabularies, pretraining data, a
    BERT-Tiny trained for 30 steps on CPU, and its conversion to a transformers model."""
    out = ROOT / "out" / "demo"
    fixtures = ROOT / "tests" / "fixtures"
    bertjp = VENV / "bin" / "bertjp"
    env = _env()
    _run([bertjp, "wiki-corpus",
          "--input", fixtures / "jawiki-20211101-cirrussearch-content.json.gz",
          "--output", out / "wiki" / "corpus", "--num-shards", "4", "--gzip"], env=env)
    _run([bertjp, "cc100-corpus", "--input", fixtures / "ja.txt.xz",
          "--output", out / "cc100" / "corpus", "--num-shards", "4", "--gzip"], env=env)
    _run([bertjp, "sample-sentences", "--input", f"{out / 'wiki'}/corpus-*.txt.gz",
          "--output", out / "sample.txt", "--num-sentences", "1000", "--seed", "0"], env=env)
    for subword in ("wordpiece", "character"):
        _run([bertjp, "train-vocab", "--input", out / "sample.txt", "--output",
              out / "tokenizers" / f"{subword}_unidic_lite", "--subword", subword], env=env)
    _run([bertjp, "pretraining-data", "--input", f"{out / 'wiki'}/corpus-*.txt.gz",
          "--vocab", out / "tokenizers" / "wordpiece_unidic_lite", "--output",
          out / "pretraining" / "wiki", "--num-shards", "2", "--dupe-factor", "2",
          "--max-predictions-per-seq", "19"], env=env)
    _run([bertjp, "validate", f"{out / 'pretraining'}/wiki-*.tfrecord.gz",
          "--manifest", out / "pretraining" / "wiki.manifest.json"], env=env)
    model_dir = out / "model" / "tiny"
    shutil.rmtree(model_dir, ignore_errors=True)  # a fresh model, not a resumed one
    _run([bertjp, "train", "local", "--input", f"{out / 'pretraining'}/wiki-*.tfrecord.gz",
          "--vocab", out / "tokenizers" / "wordpiece_unidic_lite", "--size", "tiny",
          "--steps", "30", "--global-batch-size", "16", "--learning-rate", "3e-3",
          "--warmup-steps", "3", "--steps-per-loop", "10", "--checkpoint-interval", "30",
          "--validation-steps", "2", "--model-dir", model_dir], env=env)
    _run([bertjp, "convert", "--checkpoint", model_dir, "--vocab",
          out / "tokenizers" / "wordpiece_unidic_lite", "--output", out / "hf" / "bert-tiny",
          "--overwrite"], env=env)
    _log(f"demo outputs are in {out}; a transformers model in {out / 'hf' / 'bert-tiny'}")


def test(extra: list[str]) -> None:
    """Lint with ruff (the repository's ruff.toml), then run the test suite with pytest."""
    _run([VENV / "bin" / "ruff", "check", ROOT], env=_env(), cwd=ROOT)
    _run([PY, "-m", "pytest", "-q", "-rs", ROOT / "tests", *extra], env=_env(), cwd=ROOT)


def main(argv: list[str]) -> None:
    """``dev.py setup|demo|test [pytest args]``."""
    if not argv or argv[0] not in ("setup", "demo", "test"):
        sys.exit(__doc__)
    command, rest = argv[0], argv[1:]
    setup()
    if command == "demo":
        demo()
    elif command == "test":
        test(rest)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except subprocess.CalledProcessError as err:
        sys.exit(err.returncode)
