"""Records of a Wikipedia Cirrussearch content dump.

A dump is Elasticsearch bulk format: one JSON object per line, an action line
(``{"index":{...}}`` in any of its variants: ``"_type":"page"``, ``"_doc"``, no
``_type``) before each page line. As in the reference, a line whose object has
the key ``index`` is an action line; every other object is a page and must carry
string ``title`` and ``text`` fields.
"""

from __future__ import annotations

import dataclasses
import json

__all__ = ["ACTION", "BadRecord", "Page", "parse_line"]

ACTION = object()
"""Returned by :func:`parse_line` for an action line."""


@dataclasses.dataclass(frozen=True)
class Page:
    """One page of the dump.

    Attributes:
      doc_id: the page's ``page_id`` (as text) or, without one, ``title:<title>``;
        a stable id for provenance and for seeding.
      title: the page title.
      text: the page text (Cirrussearch's plain-text rendering).
    """

    doc_id: str
    title: str
    text: str


class BadRecord(ValueError):
    """A line that is not a usable record.

    Attributes:
      reason: a short, stable name for counters (``invalid_utf8``,
        ``malformed_json``, ``not_an_object``, ``missing_field``, ``wrong_type``).
      detail: a human-readable explanation.
    """

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_line(raw: bytes) -> Page | object:
    """Parses one line of a dump.

    Args:
      raw: the line's bytes, without the newline.

    Returns:
      A :class:`Page`, or :data:`ACTION` for an action line.

    Raises:
      BadRecord: the line is not valid UTF-8 or JSON, or is a page without
        string ``title`` and ``text``.
    """
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadRecord("invalid_utf8", f"{err.reason} at byte {err.start}") from None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise BadRecord("malformed_json", f"{err.msg} at column {err.colno}") from None
    if not isinstance(obj, dict):
        raise BadRecord("not_an_object", f"a JSON {type(obj).__name__}, not an object")
    if "index" in obj:
        return ACTION
    for field in ("title", "text"):
        if field not in obj:
            raise BadRecord("missing_field", f"the page has no {field!r} field")
        if not isinstance(obj[field], str):
            kind = type(obj[field]).__name__
            raise BadRecord("wrong_type", f"{field!r} is a {kind}, not a string")
    page_id = obj.get("page_id")
    if isinstance(page_id, (int, str)) and not isinstance(page_id, bool):
        doc_id = str(page_id)
    else:
        doc_id = "title:" + obj["title"]
    return Page(doc_id=doc_id, title=obj["title"], text=obj["text"])
