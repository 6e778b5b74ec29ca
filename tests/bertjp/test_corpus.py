from bertjp.corpus import (
    BadLine,
    Cc100Document,
    format_document,
    group_cc100_documents,
    iter_corpus_documents,
)
from bertjp.streams import LineTooLong


def numbered(*lines):
    return list(enumerate(lines, start=1))


def test_format_and_read_back():
    text = format_document(["一。", "二。"]) + format_document(["三。"])
    assert text == "一。\n二。\n\n三。\n\n"
    assert list(iter_corpus_documents(text.split("\n"))) == [["一。", "二。"], ["三。"]]


def test_cc100_documents_whitespace_and_blank_runs():
    docs = list(group_cc100_documents(numbered(
        b"  a\xe3\x80\x80b  ", b"c", b"", b"   ", b"\xe3\x80\x80", b"d", b"e")))
    assert docs == [Cc100Document(0, 1, ("a b", "c")), Cc100Document(1, 6, ("d", "e"))]


def test_cc100_carriage_returns_are_line_breaks():
    docs = list(group_cc100_documents(numbered(b"a\r", b"b\r\rc", b"d")))
    assert [d.lines for d in docs] == [("a", "b"), ("c", "d")]


def test_cc100_bad_lines_are_reported_and_the_document_goes_on():
    items = list(group_cc100_documents(numbered(
        b"good", b"bad \xff byte", LineTooLong(10**9, b"xxx"), b"still", b"")))
    assert [type(i) for i in items] == [BadLine, BadLine, Cc100Document]
    assert (items[0].line, items[0].reason) == (2, "invalid_utf8")
    assert (items[1].line, items[1].reason) == (3, "line_too_long")
    assert items[2].lines == ("good", "still")
