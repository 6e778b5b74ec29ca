"""bertjp.manifest: the one schema of every job's manifest."""

import json

import pytest

from bertjp import manifest as M


def _output(path, role, records, size=10):
    return {"path": path, "role": role, "records": records, "lines": records, "bytes": size,
            "sha256": "0" * 64}


def _v1(**changes):
    data = {
        "schema_version": 1, "command": "wiki-corpus", "config": {"num_shards": 2},
        "seed": 0, "outputs_prefix": "out/corpus", "counts": {"documents_in": 3},
        "inputs": [{"path": "d.json.gz", "bytes": 5, "sha256": "1" * 64, "lines": 6}],
        "outputs": [_output("out/corpus-00000-of-00001.txt", "shard", 3)],
        "summary": {"documents": {"in": 3, "out": 3, "dropped": {}}, "dead_letters": 0,
                    "accounted": True},
        "versions": {"bertjp": "0"}, "created": "2026-12-06T00:00:00+00:00",
    }
    data.update(changes)
    return data


def test_a_manifest_round_trips_through_json():
    manifest = M.loads(json.dumps(_v1()), "m.json")
    assert manifest.source == "m.json" and manifest.summary.documents.in_ == 3
    assert manifest.shards()[0].records == 3 and manifest.inputs[0].lines == 6
    assert M.to_json(manifest) == _v1()
    assert M.loads(M.dumps(manifest)) == manifest


@pytest.mark.parametrize("change,message", [
    ({"summary": {"documents": {"in": 3, "out": 3, "dropped": {}}, "accounted": True}},
     "m.json: no 'summary.dead_letters' (schema_version 1 requires it)"),
    ({"counts": {"documents_in": "3"}}, "m.json: counts.documents_in must be int, got str"),
    ({"outputs": [{"path": "x", "role": "shard", "bytes": 1}]},
     "m.json: no 'outputs[0].records'"),
    ({"inputs": {"path": "x"}}, "m.json: inputs must be a list, got dict"),
    ({"schema_version": 9}, "m.json: schema_version 9 is not one this bertjp reads"),
])
def test_validation_names_the_file_and_the_field(change, message):
    with pytest.raises(M.ManifestError) as err:
        M.loads(json.dumps(_v1(**change)), "m.json")
    assert str(err.value).startswith(message)


def test_not_json_and_not_an_object_are_named():
    with pytest.raises(M.ManifestError, match=r"^m\.json is not a JSON manifest"):
        M.loads("{oops", "m.json")
    with pytest.raises(M.ManifestError, match=r"^m\.json is not a JSON object \(got list\)"):
        M.loads("[1]", "m.json")


def test_a_manifest_without_schema_version_is_read_leniently():
    legacy = {"config": {"instance": {"max_seq_length": 128, "max_predictions_per_seq": 19}},
              "vocab_size": 32768, "summary": {"shards": [{"path": "a", "instances": 5}]}}
    manifest = M.from_json(legacy, "old.json")
    assert manifest.schema_version == 0 and manifest.summary.shards[0].instances == 5
    spec = M.records_spec(manifest, required=M.VALIDATE_FIELDS)
    assert spec.max_seq_length == 128 and spec.shard_paths == ["a"]


def test_records_spec_names_what_a_manifest_of_another_command_lacks():
    with pytest.raises(M.NotRecordsManifest) as err:
        M.records_spec(M.from_json(_v1(), "c.json"))
    assert err.value.command == "wiki-corpus"
    assert err.value.missing[0] == ("config.instance.max_seq_length", "config.instance")
    assert "in c.json (written by `bertjp wiki-corpus`)" in str(err.value)


def test_accounted_comes_from_independent_counts_and_can_be_false():
    shard = M.OutputFile(path="p-00000-of-00001.txt", role="shard", records=8, lines=20,
                         bytes=100, sha256="")
    ok = M.summarize({"documents_in": 10, "dropped.malformed_json": 2}, [shard])
    assert ok.documents == M.Documents(in_=10, out=8, dropped={"malformed_json": 2})
    assert ok.accounted
    # A step lost a record without counting it: the writer wrote 7 of the 8 kept.
    lost = M.summarize({"documents_in": 10, "dropped.malformed_json": 2},
                       [M.OutputFile(**{**shard.__dict__, "records": 7})])
    assert not lost.accounted and lost.documents.out == 7
    # Counted by another step than the reader: records_out.
    lines = M.summarize({"lines_in": 5, "lines_out": 4}, [], unit="lines",
                        records_in="lines_in", records_out="lines_out")
    assert not lines.accounted and lines.record_unit == "lines"


def test_require_reads_config_fields_with_a_clear_error():
    manifest = M.from_json(_v1(), "c.json")
    assert manifest.require("num_shards") == 2
    with pytest.raises(M.ManifestError, match=r"missing config\.instance\.max_seq_length in "
                       r"c\.json \(written by `bertjp wiki-corpus`\)"):
        manifest.require("instance", "max_seq_length")
