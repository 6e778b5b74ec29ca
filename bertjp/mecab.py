"""MeCab dictionaries and taggers (fugashi).

A dictionary is named by a :class:`MecabDictionary`: ``unidic-lite`` (the default,
UniDic 2.1.2 as the reference's default), ``ipadic`` (the closest pip-installable
relative of the NEologd dictionary the reference's README used), or any compiled
MeCab dictionary directory with an optional ``mecabrc``. The object is small and
picklable; the native tagger is always built where it is used.

Every text bertjp hands to MeCab goes through :func:`safe_pieces`, which also
turns each NUL character into a space: MeCab reads its input as a C string and
silently stops at a NUL, losing the rest of the text (and the word before it).
A space is a word boundary that MeCab skips; text without NULs is handed over
unchanged.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import os
import tempfile

__all__ = ["MAX_PARSE_CHARS", "NUL", "MecabDictionary", "make_tagger", "output_formats",
           "safe_pieces"]

MAX_PARSE_CHARS = 1 << 16
"""The longest text handed to MeCab at once (MeCab segfaults on some multi-MB inputs)."""

NUL = "\x00"
"""MeCab stops at this character; :func:`safe_pieces` hands it a space instead."""

_PACKAGED = {"unidic-lite": "unidic_lite", "unidic_lite": "unidic_lite", "ipadic": "ipadic"}


@dataclasses.dataclass(frozen=True)
class MecabDictionary:
    """Which MeCab dictionary to use.

    Attributes:
      name: ``"unidic-lite"``, ``"ipadic"`` or a path to a dictionary directory
        (the folder holding ``sys.dic``).
      mecabrc: a ``mecabrc`` file; by default the dictionary's own one, or an empty
        configuration when the directory has none.
    """

    name: str = "unidic-lite"
    mecabrc: str | None = None

    def __post_init__(self) -> None:
        if self.name in _PACKAGED:
            return
        if not os.path.isfile(os.path.join(self.name, "sys.dic")):
            raise ValueError(
                f"MeCab dictionary {self.name!r}: expected 'unidic-lite', 'ipadic' or a "
                "directory that contains sys.dic"
            )
        if self.mecabrc is not None and not os.path.isfile(self.mecabrc):
            raise ValueError(f"mecabrc {self.mecabrc!r} does not exist")

    @property
    def canonical(self) -> tuple[str, ...]:
        """What identifies the dictionary: a packaged one's module name, or a directory's
        normalised path and ``mecabrc`` (two spellings of one dictionary compare equal)."""
        module = _PACKAGED.get(self.name)
        if module is not None:
            return ("package", module) if self.mecabrc is None else (
                "package", module, os.path.normpath(self.mecabrc))
        return ("path", os.path.normpath(self.name), os.path.normpath(self.rcfile))

    @property
    def dicdir(self) -> str:
        """The dictionary directory on this machine."""
        module = _PACKAGED.get(self.name)
        if module is None:
            return self.name
        try:
            return importlib.import_module(module).DICDIR
        except ImportError as err:
            raise ImportError(
                f"The MeCab dictionary {self.name!r} needs the pip package {module!r}: "
                f"pip install {module.replace('_', '-')}"
            ) from err

    @property
    def rcfile(self) -> str:
        """The ``mecabrc`` passed to MeCab with ``-r``."""
        if self.mecabrc is not None:
            return self.mecabrc
        own = os.path.join(self.dicdir, "mecabrc")
        return own if os.path.isfile(own) else os.devnull

    def describe(self) -> dict[str, str]:
        """Name and version, for manifests."""
        module = _PACKAGED.get(self.name)
        if module is None:
            return {"name": "path", "dicdir": self.name, "mecabrc": self.rcfile}
        version = importlib.metadata.version(module.replace("_", "-"))
        return {"name": self.name.replace("_", "-"), "package_version": version}


def _read_rc(path: str) -> tuple[list[str], dict[str, str]]:
    """Reads a MeCab rc file (``key = value`` lines, ``;``/``#`` comments)."""
    if path == os.devnull or not os.path.isfile(path):
        return [], {}
    with open(path, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8", "replace")
    values = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip()[:1] in (";", "#"):
            continue
        key, sep, value = line.partition("=")
        if sep:
            values.setdefault(key.strip(), value.strip())
    return text.splitlines(), values


def output_formats(dictionary: MecabDictionary) -> tuple[str, str]:
    """The node and unknown-word formats of MeCab's default output for ``dictionary``.

    This is what ``tagger.parse(text)`` prints per token: the ``mecabrc`` wins over
    the dictionary's ``dicrc``, and ``output-format-type`` selects
    ``node-format-<type>`` (unidic-lite sets ``unidic``); without it MeCab prints
    ``%m\\t%H\\n``.
    """
    _, rc = _read_rc(dictionary.rcfile)
    _, dicrc = _read_rc(os.path.join(dictionary.dicdir, "dicrc"))
    params = {**dicrc, **rc}
    style = params.get("output-format-type", "")
    suffix = f"-{style}" if style else ""
    if style in ("wakati", "dump", "none", "em"):
        raise ValueError(f"MeCab output-format-type {style!r} has no per-token features")
    node = params.get(f"node-format{suffix}") or r"%m\t%H\n"
    unk = params.get(f"unk-format{suffix}") or node
    return node, unk


def make_tagger(dictionary: MecabDictionary, prefix: str = "", node_format: str | None = None):
    """Builds a ``fugashi.GenericTagger`` for ``dictionary``.

    Args:
      dictionary: the dictionary to load.
      prefix: a MeCab format prepended to every token line of the default output
        (e.g. ``%pe\\t`` for the token's end offset). With a prefix the tagger reads
        a generated rc file: the user's ``mecabrc`` plus an output style
        ``bertjp`` whose formats are the default ones with the prefix.
      node_format: instead, one format for every token, known or unknown (e.g.
        ``%m\\n`` for the surfaces only).

    Raises:
      ValueError: a path contains whitespace (MeCab splits its options on spaces).
      RuntimeError: MeCab could not load the dictionary (fugashi's message).
    """
    import fugashi  # native; imported where a tagger is built

    paths = [dictionary.dicdir, dictionary.rcfile]
    if any(c.isspace() for p in paths for c in p):
        raise ValueError(f"MeCab paths cannot contain whitespace: {paths}")
    if not prefix and node_format is None:
        return fugashi.GenericTagger(f"-d {paths[0]} -r {paths[1]}")
    node, unk = (node_format, node_format) if node_format else output_formats(dictionary)
    lines, _ = _read_rc(dictionary.rcfile)
    lines += [
        "output-format-type = bertjp",
        f"node-format-bertjp = {prefix}{node}",
        f"unk-format-bertjp = {prefix}{unk}",
        "bos-format-bertjp =",
        r"eos-format-bertjp = EOS\n",
    ]
    with tempfile.TemporaryDirectory(prefix="bertjp-mecab-") as tmp:
        rcfile = os.path.join(tmp, "mecabrc")
        with open(rcfile, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        # -O on the command line wins over the dictionary's own output-format-type.
        return fugashi.GenericTagger(f"-d {paths[0]} -r {rcfile} -Obertjp")


def safe_pieces(text: str, limit: int = MAX_PARSE_CHARS):
    """Yields consecutive pieces of ``text`` of at most ``limit`` characters, ready for MeCab.

    MeCab crashes (segfaults) on some inputs of a few megabytes, so long texts are
    parsed piece by piece. Each piece is cut just after a ``。`` in its second half
    where there is one (a token and sentence boundary with every dictionary, so
    the analysis is unchanged), else at the limit.

    Each NUL becomes a space (MeCab would stop reading at it): a word boundary, one
    character and one UTF-8 byte like the NUL, so offsets into ``text`` still hold.
    """
    if NUL in text:
        text = text.replace(NUL, " ")
    start = 0
    while len(text) - start > limit:
        cut = text.rfind("。", start + limit // 2, start + limit)
        end = cut + 1 if cut != -1 else start + limit
        yield text[start:end]
        start = end
    yield text[start:]
