import gzip

import pytest

from bertjp.cirrus import ACTION, BadRecord, Page, parse_line
from tests.conftest import FIXTURES, WIKI_DUMP


@pytest.mark.parametrize("line", [
    b'{"index":{"_type":"page","_id":"1"}}',
    b'{"index":{"_type":"_doc","_id":"1"}}',
    b'{"index":{"_id":"1"}}',
])
def test_every_action_line_variant(line):
    assert parse_line(line) is ACTION


def test_page_any_key_order_and_ascii_escapes():
    line = b'{"text":"\\u6771\\u4eac\\/","page_id":7,"title":"\\u6771"}'
    assert parse_line(line) == Page(doc_id="7", title="東", text="東京/")


def test_page_without_page_id_uses_title():
    assert parse_line(b'{"title":"T","text":"x"}').doc_id == "title:T"


@pytest.mark.parametrize("line,reason", [
    (b'{"title": "x", "text": ', "malformed_json"),
    (b'{"title":"\xff\xfe","text":"a"}', "invalid_utf8"),
    (b'{"title":"a","text":"b\x00c"}', "malformed_json"),  # a raw NUL inside a string
    (b'{"title":"a"}', "missing_field"),
    (b'{"text":"a"}', "missing_field"),
    (b'{"title":"a","text":123}', "wrong_type"),
    (b'{"title":["a"],"text":"b"}', "wrong_type"),
    (b'{"title":"a","text":null}', "wrong_type"),
    (b'[1, 2]', "not_an_object"),
])
def test_bad_records_name_their_reason(line, reason):
    with pytest.raises(BadRecord) as err:
        parse_line(line)
    assert err.value.reason == reason
    assert err.value.detail


@pytest.mark.parametrize("path", [
    WIKI_DUMP,
    *sorted((FIXTURES / "cirrus_variants").glob("*.json.gz")),
])
def test_real_dumps_alternate_actions_and_pages(path):
    with gzip.open(path) as f:
        parsed = [parse_line(line.rstrip(b"\n")) for line in f]
    assert parsed[0::2] == [ACTION] * (len(parsed) // 2)
    pages = parsed[1::2]
    assert all(isinstance(p, Page) and p.text and p.doc_id.isdigit() for p in pages)
