"""A GCS emulator on 127.0.0.1 for ``gs://`` tests (gcp-storage-emulator, in-process).

The environment keeps google-auth off the network: no GCE metadata check, the
metadata address pointed at a closed loopback port, every other HTTP(S) address
behind a proxy that does not exist, loopback exempt. Beam's credential lookup
(which retries for ~23 s when there are no credentials) is settled once: no
credentials, so Beam uses an anonymous client, which google-cloud-storage sends
to ``STORAGE_EMULATOR_HOST``. Pipelines run in-process (FnApiRunner) here;
``sitecustomize`` hooks would be needed for multi-process workers.
"""

from __future__ import annotations

import os
import socket

import pytest

BUCKET = "bertjp-test"
OFFLINE_ENV = {
    "NO_GCE_CHECK": "true",
    "GCE_METADATA_HOST": "127.0.0.1:1",
    "GCE_METADATA_IP": "127.0.0.1:1",
    "HTTPS_PROXY": "http://127.0.0.1:1",
    "HTTP_PROXY": "http://127.0.0.1:1",
    "NO_PROXY": "127.0.0.1,localhost",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def gcs():
    """``gs://bertjp-test``, served by an in-memory emulator for the whole session."""
    from gcp_storage_emulator.server import create_server

    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    saved = {k: os.environ.get(k) for k in [*OFFLINE_ENV, "STORAGE_EMULATOR_HOST"]}
    os.environ.update(OFFLINE_ENV, STORAGE_EMULATOR_HOST=f"http://127.0.0.1:{port}")
    from apache_beam.internal.gcp import auth

    auth._Credentials._credentials_init = True  # pylint: disable=protected-access
    auth._Credentials._credentials = None  # pylint: disable=protected-access
    try:
        yield f"gs://{BUCKET}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def upload(local_path, gs_path: str) -> str:
    """Copies a local file to ``gs_path`` through Beam's FileSystems."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    with open(local_path, "rb") as src, FileSystems.create(
            gs_path, compression_type=CompressionTypes.UNCOMPRESSED) as dst:
        dst.write(src.read())
    return gs_path


def read_bytes(gs_path: str) -> bytes:
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(gs_path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read()


def listing(pattern: str) -> list[str]:
    from apache_beam.io.filesystems import FileSystems

    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
