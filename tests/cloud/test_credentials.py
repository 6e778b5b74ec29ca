"""``gs://`` without credentials, or without a reachable Cloud Storage: one line, in seconds.

The subprocesses run the real console script in an environment with no credentials
anywhere (``HOME`` in a temporary folder, no ``GOOGLE_APPLICATION_CREDENTIALS``,
the GCE metadata server on a closed loopback port) and every non-loopback address
behind a proxy that does not exist, so nothing but 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.cloud.conftest import OFFLINE_ENV, _free_port

BERTJP = [sys.executable, "-m", "bertjp_cli"]
FIX = "gcloud auth application-default login"
# Beam alone takes about two minutes to fail; the check answers in a few seconds.
LIMIT_S = 20

COMMANDS = {
    "validate": ["validate", "--input", "gs://b/data/x-*.tfrecord.gz",
                 "--manifest", "gs://b/data/x.manifest.json"],
    "inspect": ["inspect", "gs://b/data/x-00000-of-00001.tfrecord.gz", "--vocab", "gs://b/v"],
    "wiki-corpus": ["wiki-corpus", "--input", "gs://b/dumps/*.json.gz",
                    "--output", "gs://b/corpus/wiki/corpus"],
    "pretraining-data": ["pretraining-data", "--input", "gs://b/corpus/*.txt",
                         "--vocab", "gs://b/tok", "--output=gs://b/data/x"],
    "train": ["train", "tpu", "--project", "p", "--zone", "z", "--vocab", "gs://b/tok",
              "--model-dir", "gs://b/models/x", "--cc100-data", "gs://b/data/x"],
}


def offline_env(tmp_path, **extra) -> dict[str, str]:
    """This process's environment without any credentials, endpoint or gcloud config."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG", "NO_GCE_CHECK",
                        "STORAGE_EMULATOR_HOST", "API_ENDPOINT_OVERRIDE")}
    env.update({k: v for k, v in OFFLINE_ENV.items() if k != "NO_GCE_CHECK"})
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), **extra)
    return env


def run(argv, env) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    result = subprocess.run([*BERTJP, *argv], capture_output=True, text=True, env=env,
                            timeout=2 * LIMIT_S)
    return result, time.monotonic() - start


def assert_one_line_error(result, seconds, name):
    assert result.returncode in (1, 2), result.stderr
    assert seconds < LIMIT_S
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"bertjp {name}: error: ")
    assert "Traceback" not in result.stderr and "RetryError" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("name", ["validate", "wiki-corpus"])
def test_no_credentials_fail_in_seconds_with_the_fix(tmp_path, name):
    result, seconds = run(COMMANDS[name], offline_env(tmp_path))
    line = assert_one_line_error(result, seconds, name)
    assert "no Google Cloud credentials" in line
    assert FIX in line and "GOOGLE_APPLICATION_CREDENTIALS" in line
    assert COMMANDS[name][2] in line  # the flag's value is named


def test_a_missing_key_file_is_named(tmp_path):
    key = tmp_path / "nope.json"
    result, seconds = run(COMMANDS["validate"],
                          offline_env(tmp_path, GOOGLE_APPLICATION_CREDENTIALS=str(key)))
    line = assert_one_line_error(result, seconds, "validate")
    assert f"GOOGLE_APPLICATION_CREDENTIALS={key}" in line and "not found" in line and FIX in line


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_an_unreachable_emulator_fails_in_seconds(tmp_path, name):
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    result, seconds = run(COMMANDS[name], offline_env(tmp_path, STORAGE_EMULATOR_HOST=url))
    line = assert_one_line_error(result, seconds, name)
    assert f"cannot reach the Cloud Storage emulator STORAGE_EMULATOR_HOST={url}" in line
    assert "gs://b/" in line and "Connection refused" in line


def test_credentials_but_no_route_to_cloud_storage(tmp_path):
    # gcloud's application-default file (never refreshed here); the endpoint is behind
    # the proxy on a closed loopback port
    env = offline_env(tmp_path)
    adc = tmp_path / "home" / ".config" / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    adc.write_text(json.dumps({"type": "authorized_user", "client_id": "c",
                               "client_secret": "s", "refresh_token": "r"}))
    result, seconds = run(COMMANDS["validate"], env)
    line = assert_one_line_error(result, seconds, "validate")
    assert "cannot reach Cloud Storage at https://storage.googleapis.com" in line
    assert "credentials" not in line


def test_help_needs_no_credentials(tmp_path):
    result, seconds = run([*COMMANDS["validate"], "--help"], offline_env(tmp_path))
    assert result.returncode == 0 and result.stdout.startswith("usage: bertjp validate")
    assert seconds < LIMIT_S


@pytest.mark.parametrize("argv,expected", [
    (["--input", "gs://b/x", "--output", "out"], "--input gs://b/x"),
    (["--input=gs://b/x*"], "--input gs://b/x*"),
    (["gs://b/x", "--manifest", "m.json"], "gs://b/x"),
    (["--input", "a", "--temp_location", "gs://b/tmp"], "--temp_location gs://b/tmp"),
    (["--input", "a", "--output", "b"], None),
    (["--input", "gs://b/x", "--help"], None),
    (["--input", "gs://b/x", "--runner", "DataflowRunner", "--dry_run", "True"], None),
    (["--input", "gs://b/x", "--dry_run=True"], None),
    (["tpu", "--model-dir", "gs://b/m", "--dry-run"], None),
])
def test_which_arguments_are_checked(argv, expected):
    from bertjp_cli import gcs_check

    assert gcs_check.gs_argument(argv) == expected


def test_a_slow_lookup_is_cut_short():
    from bertjp_cli import gcs_check

    start = time.monotonic()
    assert gcs_check._bounded(lambda: time.sleep(5), 0.2, "too slow") == "too slow"
    assert time.monotonic() - start < 2


def test_the_emulator_of_the_other_tests_passes_the_check(gcs):
    from bertjp_cli import gcs_check

    assert gcs_check.gcs_problem(["--input", f"{gcs}/x-*"]) is None
    assert gcs_check.storage_endpoint() == (os.environ["STORAGE_EMULATOR_HOST"],
                                            "STORAGE_EMULATOR_HOST")
