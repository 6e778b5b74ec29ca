"""Text normalisation for the corpus stage, exactly as the reference scripts do it.

``clean_wiki_text`` is ``preprocess_text`` of cl-tohoku/bert-japanese
``make_corpus_wiki.py`` (recipe §2.2), rule for rule and in the same order;
``normalize_cc100_line`` is the whitespace normalisation of ``merge_split_corpora.py``
(recipe §3).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["clean_wiki_text", "normalize_cc100_line", "remove_non_printable"]

_CITATION = re.compile(r"\[\d+?\]")
_REQUEST = re.compile(r"\[要.+?\]")
_TEMPLATE = re.compile(r"\{\{+[^{}]+?\}\}+")
_FOOTNOTES = re.compile(r" \^ .+")
_ANNOTATION = re.compile(r"\[(要出典|リンク切れ|.+?\?)\]")
_WHITESPACE = re.compile(r"\s+")


def remove_non_printable(text: str) -> str:
    """Drops every character for which ``str.isprintable()`` is false.

    Tabs and newlines are deleted, not replaced by a space, as in the reference.
    """
    if text.isprintable():  # the common case, checked in C
        return text
    return "".join(ch for ch in text if ch.isprintable())


def clean_wiki_text(text: str, title: str | None) -> str:
    """Cleans the ``text`` of a Cirrussearch page as ``make_corpus_wiki.py`` does.

    Args:
      text: the page's ``text`` field.
      title: the page's ``title`` field; a breadcrumb ``"A > B > title"`` at the
        start of the text is removed. ``None`` skips that rule.

    Returns:
      One line of cleaned text (no newlines), possibly empty.
    """
    text = unicodedata.normalize("NFKC", text)
    text = remove_non_printable(text)
    text = _CITATION.sub("", text)
    text = _REQUEST.sub("", text)
    text = _TEMPLATE.sub("", text)
    if title is not None:
        text = re.sub(r"^.+? \> " + re.escape(title), "", text)
    text = _FOOTNOTES.sub("", text)
    text = _ANNOTATION.sub("", text)
    return _WHITESPACE.sub(" ", text).strip()


def normalize_cc100_line(line: str) -> str:
    """Strips a CC-100 line and turns every run of Unicode whitespace into one space."""
    return " ".join(line.split())
