"""Dataflow jobs built offline: ``--dry_run`` (no network) and ``--template_location``
(staged to the GCS emulator, nothing submitted); the job graphs are checked."""

import json

import apache_beam as beam
import pytest

from pipelines import (
    cc100_corpus,
    options,
    pretraining_data,
    sample_sentences,
    train_vocab,
    wiki_corpus,
)
from tests.cloud.conftest import listing, read_bytes
from tests.conftest import REFERENCE, ROOT

DATAFLOW = ["--runner", "DataflowRunner", "--project", "test-project", "--region",
            "us-central1", "--temp_location", "gs://bertjp-test/tmp", "--num_workers", "2",
            "--max_num_workers", "4", "--machine_type", "n2-standard-4", "--worker_disk_type",
            "pd-ssd", "--experiments", "use_runner_v2", "--sdk_container_image",
            "us-docker.pkg.dev/p/r/bertjp:1", "--setup_file", str(ROOT / "setup.py")]
VOCAB = str(REFERENCE / "vocab" / "wordpiece_unidic_lite")

COMMANDS = {
    "wiki-corpus": (wiki_corpus, ["--input", "gs://b/dumps/jawiki-*.json.gz",
                                  "--output", "gs://b/corpus/wiki/corpus", "--num-shards", "8"]),
    "cc100-corpus": (cc100_corpus, ["--input", "gs://b/dumps/ja.txt.xz",
                                    "--output", "gs://b/corpus/cc100/corpus"]),
    "sample-sentences": (sample_sentences, ["--input", "gs://b/corpus/wiki/corpus-*",
                                            "--output", "gs://b/sample.txt",
                                            "--num-sentences", "1000"]),
    "train-vocab": (train_vocab, ["--input", "gs://b/sample.txt", "--output", "gs://b/tok/wp"]),
    "pretraining-data": (pretraining_data, ["--input", "gs://b/corpus/cc100/corpus-*",
                                            "--vocab", VOCAB, "--output", "gs://b/data/cc100"]),
}


def dry_run(module, argv):
    """The command's own parsing and pipeline construction, run with --dry_run."""
    parser = module.make_parser()
    args, pipeline_options = options.parse_args(parser, [*argv, *DATAFLOW, "--dry_run", "True"])
    config = module.config_from_args(args)
    pipeline = beam.Pipeline(options=pipeline_options)
    module.build(pipeline, config)
    return pipeline.run(), pipeline_options


def transforms(result) -> dict[str, object]:
    proto = result.job.proto_pipeline
    return {t.unique_name: t for t in proto.components.transforms.values()}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_builds_a_dataflow_job_offline(name):
    module, argv = COMMANDS[name]
    result, options = dry_run(module, argv)
    names = transforms(result)
    assert any(n.endswith("MatchInputs/Match") or "MatchInputs" in n for n in names)
    all_options = options.get_all_options()
    assert all_options["runner"] == "DataflowRunner"
    assert all_options["save_main_session"] is False  # code ships with setup.py / the image
    assert all_options["setup_file"].endswith("setup.py")
    assert all_options["sdk_container_image"] == "us-docker.pkg.dev/p/r/bertjp:1"
    assert all_options["machine_type"] == "n2-standard-4"


def _feeds(producer, consumer) -> bool:
    """Whether an output PCollection of ``producer`` is an input of ``consumer``."""
    return bool(set(producer.outputs.values()) & set(consumer.inputs.values()))


@pytest.mark.parametrize("name,read,spread,work", [
    ("wiki-corpus", "ReadPages", "SpreadPages", "SplitPages"),
    ("pretraining-data", "ReadDocuments", "SpreadDocuments", "Tokenize"),
    ("train-vocab", "ReadLines", "SpreadLines", "CountWords"),
])
def test_a_reshuffle_follows_the_single_file_reads(name, read, spread, work):
    # One file is read by one worker; a Reshuffle right after it spreads the records
    # over all workers before the expensive step (MeCab).
    module, argv = COMMANDS[name]
    named = transforms(dry_run(module, argv)[0])
    assert any(n.startswith(f"{spread}/") and "Reshuffle" in n for n in named), spread
    assert _feeds(named[read], named[spread]) and _feeds(named[spread], named[work])


def test_cc100_documents_go_from_the_reader_to_the_shard_grouping():
    # cc100's per-document work is whitespace normalisation, done while reading (the xz
    # stream is serial anyway); the shard writer's GroupByKey spreads the documents.
    named = transforms(dry_run(*COMMANDS["cc100-corpus"])[0])
    assert _feeds(named["ReadDocuments"], named["WriteShards/ToChunk"])
    assert "WriteShards/GroupChunks" in named


def test_the_cli_says_a_dry_run_was_not_submitted(capsys):
    module, argv = COMMANDS["wiki-corpus"]
    out = module.run([*argv, *DATAFLOW, "--dry_run", "True"])
    assert out["dry_run"] is True
    assert "dry run: job built, not submitted" in capsys.readouterr().err


def test_a_template_stages_the_package_and_no_main_session(gcs, tmp_path):
    template = tmp_path / "wiki-corpus.json"
    flags = [f if f != "gs://bertjp-test/tmp" else f"{gcs}/tmp" for f in DATAFLOW]
    flags = [f for f in flags]  # same options, temp/staging on the emulator
    wiki_corpus.run(["--input", f"{gcs}/dumps/jawiki-*.json.gz", "--output",
                     f"{gcs}/corpus/wiki/corpus", *flags, "--staging_location",
                     f"{gcs}/staging", "--template_location", str(template)])
    job = json.loads(template.read_text())
    env = job["environment"]
    images = [i.get("containerImage") for pool in env["workerPools"]
              for i in pool.get("sdkHarnessContainerImages", [])]
    assert "us-docker.pkg.dev/p/r/bertjp:1" in images
    options = env["sdkPipelineOptions"]["options"]
    assert options["save_main_session"] is False and options["setup_file"].endswith("setup.py")
    staged = [p.rsplit("/", 1)[1] for p in listing(f"{gcs}/staging/**")]
    assert "workflow.tar.gz" in staged  # the sdist of setup.py: the code reaches the workers
    assert "pickled_main_session" not in staged
    assert "pipeline.pb" in staged
    assert read_bytes([p for p in listing(f"{gcs}/staging/**")
                       if p.endswith("workflow.tar.gz")][0])[:2] == b"\x1f\x8b"
