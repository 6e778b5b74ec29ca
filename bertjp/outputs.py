"""Output naming and the checks that keep one run's files apart from another's.

Every sharded output is ``PREFIX-SSSSS-of-NNNNN.SUFFIX`` with its manifest at
``PREFIX.manifest.json``. This module holds the pure rules (no I/O): which names
belong to a prefix, which of them a new run does not write (files of an earlier
run, to be removed), and whether the files a reader matched are exactly those its
manifest lists, with the sizes it lists. Callers list and stat files themselves
(Beam's ``FileSystems``), locally or on ``gs://``.
"""

from __future__ import annotations

import posixpath
import re

from bertjp.manifest import Manifest, OutputFile

__all__ = [
    "MANIFEST_SUFFIX",
    "SHARD_SUFFIXES",
    "check_matched_files",
    "glob_escape",
    "has_glob",
    "manifest_problems",
    "manifest_shards",
    "shard_problems",
    "prefix_of_shard",
    "shard_glob",
    "stale_outputs",
    "temp_glob",
]

MANIFEST_SUFFIX = ".manifest.json"
SHARD_SUFFIXES = (".txt", ".txt.gz", ".tfrecord.gz")
_SHARD_RE = re.compile(r"^(?P<prefix>.+)-(?P<shard>\d{5})-of-(?P<count>\d{5})"
                       r"(?P<suffix>\.txt|\.txt\.gz|\.tfrecord\.gz)$")
_GLOB_CHARS = re.compile(r"([*?\[])")


def glob_escape(path: str) -> str:
    """``path`` with its glob characters escaped (``a[1]`` → ``a[[]1]``), for a match
    that must find that literal name (fnmatch and Beam's ``FileSystems.match``)."""
    return _GLOB_CHARS.sub(r"[\1]", path)


def has_glob(pattern: str) -> bool:
    """Whether ``pattern`` has glob characters (else it names one file)."""
    return bool(_GLOB_CHARS.search(pattern))


def shard_glob(prefix: str) -> str:
    """A pattern matching every shard name of ``prefix`` (any count, any suffix); callers
    keep only names :func:`prefix_of_shard` accepts."""
    return glob_escape(prefix) + "-?????-of-?????.*"


def temp_glob(prefix: str) -> str:
    """A pattern matching the temporary folders and files writers leave under ``prefix``
    (``PREFIX-00000-of-00008.txt.tmp-1a2b3c`` ...)."""
    return glob_escape(prefix) + "*.tmp-*"


def prefix_of_shard(path: str) -> str | None:
    """The prefix of a shard path (``a/corpus-00001-of-00004.txt.gz`` → ``a/corpus``), or
    ``None`` when ``path`` is not named as a shard."""
    match = _SHARD_RE.match(path)
    return match.group("prefix") if match else None


def stale_outputs(existing, expected) -> list[str]:
    """The shard files of a prefix that a new run will not write (an earlier run's, with
    another shard count or suffix), sorted. ``existing`` may hold other names; only
    shard names count."""
    expected = set(expected)
    return sorted(p for p in existing if prefix_of_shard(p) is not None and p not in expected)


def manifest_shards(manifest: Manifest) -> dict[str, int]:
    """``{basename: bytes}`` of the shard files a manifest lists."""
    return {posixpath.basename(o.path): o.bytes for o in manifest.shards()}


def manifest_problems(matched: dict[str, int], manifest: Manifest, manifest_path: str,
                      subset: bool = False) -> list[str]:
    """:func:`shard_problems` against the shards ``manifest`` lists."""
    return shard_problems(matched, manifest.shards(), manifest_path, subset)


def shard_problems(matched: dict[str, int], shards: list[OutputFile], manifest_path: str,
                   subset: bool = False) -> list[str]:
    """How the files a reader matched differ from the shards a manifest lists.

    Args:
      matched: ``{path: size in bytes}`` of the files matched under one prefix.
      shards: the shards that prefix's manifest lists.
      manifest_path: where it was read (named in the messages).
      subset: the files were named one by one (no glob), so listed files that were
        not named are not missing.

    Returns:
      One message per problem: a file the manifest does not list (an earlier run's,
      or a stranger's), a listed file that was not matched (missing), a size that
      differs (truncated or rewritten). Empty when they agree.
    """
    listed = {posixpath.basename(o.path): o.bytes for o in shards}
    if not listed:
        return []
    by_name = {posixpath.basename(p): (p, size) for p, size in matched.items()}
    problems = []
    for name in sorted(set(by_name) - set(listed)):
        problems.append(f"{by_name[name][0]} is not in {manifest_path} (a file of another "
                        "run? remove it or rerun the job that wrote the manifest)")
    for name in sorted(set(listed) & set(by_name)):
        path, size = by_name[name]
        want = listed[name]
        if size != want:
            problems.append(f"{path} has {size:,} bytes, {manifest_path} says {want:,} "
                            "(truncated or rewritten: rerun the job that wrote it)")
    missing = [] if subset else sorted(set(listed) - set(by_name))
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3
                                          else "")
        problems.append(f"{len(missing)} of the {len(listed)} files {manifest_path} lists "
                        f"are not matched: {shown}")
    return problems


def check_matched_files(matched: dict[str, int], load_manifest,
                        named: frozenset[str] = frozenset()) -> list[str]:
    """Checks files a reader matched against the manifests found beside them.

    Args:
      matched: ``{path: size in bytes}`` of every file the reader's patterns matched.
      load_manifest: ``f(path) -> Manifest | None``: the manifest at ``path``, ``None``
        when there is none (the caller's I/O: local or ``gs://``).
      named: the paths that were given literally, not matched by a glob: a prefix
        whose files were all named may be a deliberate subset of the manifest's.

    Returns:
      The problems (see :func:`manifest_problems`) of every prefix whose
      ``PREFIX.manifest.json`` exists; files not named as shards are not checked.
    """
    by_prefix: dict[str, dict[str, int]] = {}
    for path, size in matched.items():
        prefix = prefix_of_shard(path)
        if prefix is not None:
            by_prefix.setdefault(prefix, {})[path] = size
    problems = []
    for prefix, files in sorted(by_prefix.items()):
        path = prefix + MANIFEST_SUFFIX
        manifest = load_manifest(path)
        if manifest is not None:
            subset = all(f in named for f in files)
            problems += manifest_problems(files, manifest, path, subset=subset)
    return problems
