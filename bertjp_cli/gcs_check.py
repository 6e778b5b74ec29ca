"""Fail fast when a command's ``gs://`` paths cannot work: no credentials, no Cloud Storage.

Without Application Default Credentials, Beam retries its credential lookup and
then every Cloud Storage call for about two minutes, printing retry tracebacks,
before it fails with ``RetryError('Timeout of 120.0s exceeded')``. ``bertjp``
checks once, before it runs a command whose arguments hold a ``gs://`` value,
and says what is wrong in one line, with the fix:

- credentials, as the Cloud Storage client finds them (``google.auth.default()``:
  ``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's application-default file, the GCE
  metadata server), with the metadata server's wait bounded; skipped when
  ``STORAGE_EMULATOR_HOST`` points at an emulator, which needs none;
- the endpoint (the emulator, ``API_ENDPOINT_OVERRIDE`` or
  ``https://storage.googleapis.com``): one request, short timeout, no retry; any
  HTTP answer will do.

Help and dry runs (Beam's ``--dry_run``, ``train tpu --dry-run``) touch no bucket
and are not checked.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import warnings
from typing import Callable, Sequence

__all__ = ["DEFAULT_ENDPOINT", "FIX", "gcs_problem", "gs_argument", "storage_endpoint"]

DEFAULT_ENDPOINT = "https://storage.googleapis.com"
FIX = ("run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS "
       "to a service-account key file")
METADATA_TIMEOUT_S = 1.0  # each request to the GCE metadata server (google-auth: 3 s)
CREDENTIALS_TIMEOUT_S = 8.0  # the whole credential lookup, metadata retries included
ENDPOINT_TIMEOUT_S = 5.0  # the reachability request, name lookup included
_NOT_FOUND = "Your default credentials were not found"


def gs_argument(argv: Sequence[str]) -> str | None:
    """The first ``gs://`` value of ``argv`` with its flag (``--input gs://b/x``), or
    ``None`` when there is none, or for help and dry runs, which need no bucket."""
    args = list(argv)
    if "-h" in args or "--help" in args or _is_dry_run(args):
        return None
    for i, arg in enumerate(args):
        flag, eq, value = arg.partition("=")
        if eq and flag.startswith("--") and value.startswith("gs://"):
            return f"{flag} {value}"
        if arg.startswith("gs://"):
            before = args[i - 1] if i else ""
            return f"{before} {arg}" if before.startswith("--") and "=" not in before else arg
    return None


def _is_dry_run(args: list[str]) -> bool:
    """``train tpu --dry-run``, or Beam's ``--dry_run VALUE`` / ``--dry_run=VALUE`` with a
    non-empty value (Beam treats any such string as true)."""
    if "--dry-run" in args:
        return True
    for i, arg in enumerate(args):
        if arg == "--dry_run":
            return i + 1 < len(args) and bool(args[i + 1])
        if arg.startswith("--dry_run="):
            return bool(arg.partition("=")[2])
    return False


def storage_endpoint() -> tuple[str, str | None]:
    """``(url, environment variable that set it or None)`` of the Cloud Storage endpoint
    the client library will use."""
    for name in ("STORAGE_EMULATOR_HOST", "API_ENDPOINT_OVERRIDE"):
        value = os.environ.get(name, "").strip()
        if value:
            return (value if "://" in value else "http://" + value), name
    return DEFAULT_ENDPOINT, None


def _bounded(fn: Callable[[], str | None], seconds: float, late: str) -> str | None:
    """``fn()`` in a daemon thread; ``late`` when it has not returned within ``seconds``,
    and the exception's type and first line when it raised one."""
    result: list[str | None] = []

    def target() -> None:
        try:
            result.append(fn())
        except Exception as err:  # pylint: disable=broad-except
            first = (str(err).strip().splitlines() or [""])[0]
            result.append(f"{type(err).__name__}: {first}" if first else type(err).__name__)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return result[0] if result else late


def _credentials_problem() -> str | None:
    """Why ``google.auth.default()`` finds no credentials (``None`` when it finds some),
    its GCE metadata requests cut to ``METADATA_TIMEOUT_S`` each."""
    import google.auth
    from google.auth import exceptions
    from google.auth.transport import requests as auth_requests

    class ShortRequest(auth_requests.Request):
        """google-auth's requests transport with every timeout capped."""

        def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
            timeout = min(timeout or METADATA_TIMEOUT_S, METADATA_TIMEOUT_S)
            return super().__call__(url, method, body, headers, timeout, **kwargs)

    try:
        google.auth.default(request=ShortRequest())
    except exceptions.DefaultCredentialsError as err:
        message = " ".join(str(err).split())
        if message.startswith(_NOT_FOUND):
            return ("none found in GOOGLE_APPLICATION_CREDENTIALS, gcloud's "
                    "application-default credentials or a GCE metadata server")
        where = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        return f"GOOGLE_APPLICATION_CREDENTIALS={where}: {message}" if where else message
    return None


def _short_reason(err: Exception) -> str:
    """``ConnectionError: [Errno 111] Connection refused`` rather than urllib3's paragraph."""
    text = str(err)
    errno = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    if errno:
        return f"{type(err).__name__}: {errno.group(0).strip()}"
    if "proxy" in text.lower():
        return f"{type(err).__name__}: cannot connect to the proxy"
    return type(err).__name__


def _endpoint_problem(url: str) -> str | None:
    """Why one GET of ``url`` (short timeout, no retry, no redirect) gets no HTTP answer;
    ``None`` when it gets one, whatever its status."""
    import requests

    try:
        with requests.Session() as session:
            session.get(url, timeout=ENDPOINT_TIMEOUT_S, allow_redirects=False)
    except requests.RequestException as err:
        return _short_reason(err)
    return None


def _quietly(fn: Callable[[], str | None], seconds: float, late: str) -> str | None:
    """:func:`_bounded`, with google-auth's warnings (metadata server retries, end-user
    credentials) kept off the terminal, also from a lookup still running when cut short."""
    logger = logging.getLogger("google.auth")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        problem = _bounded(fn, seconds, late)
    if problem != late:  # the thread is done; else the command stops here anyway
        logger.setLevel(level)
    return problem


def gcs_problem(argv: Sequence[str]) -> str | None:
    """One line saying why the ``gs://`` paths of ``argv`` cannot work, with the fix;
    ``None`` when they may (or there are none to check)."""
    what = gs_argument(argv)
    if what is None:
        return None
    url, variable = storage_endpoint()
    if variable != "STORAGE_EMULATOR_HOST":
        late = f"no answer from the GCE metadata server within {CREDENTIALS_TIMEOUT_S:.0f} s"
        problem = _quietly(_credentials_problem, CREDENTIALS_TIMEOUT_S, late)
        if problem is not None:
            return f"no Google Cloud credentials for {what} ({problem}): {FIX}"
    late = f"no answer within {ENDPOINT_TIMEOUT_S:.0f} s"
    problem = _quietly(lambda: _endpoint_problem(url), ENDPOINT_TIMEOUT_S + 1, late)
    if problem is None:
        return None
    if variable == "STORAGE_EMULATOR_HOST":
        return (f"cannot reach the Cloud Storage emulator STORAGE_EMULATOR_HOST={url} for "
                f"{what} ({problem}): start it, or unset STORAGE_EMULATOR_HOST to use "
                "Cloud Storage")
    source = f" ({variable})" if variable else ""
    return (f"cannot reach Cloud Storage at {url}{source} for {what} ({problem}): check the "
            "network connection, and HTTPS_PROXY/NO_PROXY if you use a proxy")
