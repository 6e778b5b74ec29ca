"""``bertjp estimate`` and its cost model (``bertjp_cli.estimate.prices`` and ``.project``)."""

from __future__ import annotations

import json

import pytest

import bertjp_cli
from bertjp_cli import estimate
from bertjp_cli.estimate import prices, project
from tests.conftest import CC100, REFERENCE, WIKI_DUMP

VOCAB = REFERENCE / "vocab" / "wordpiece_unidic_lite"
FAST = ["--sample-mb", "0.3", "--vocab", str(VOCAB)]


# ----------------------------------------------------------------------------- costs


def test_projection_by_hand():
    # 1,000 MB at 10 CPU s/MB on 4 × n1-standard-4 (16 cores); output half the input
    rate = project.StageRate("job", (project.Phase("all", 10.0),), output_per_input=0.5)
    proj = project.projection([rate], 1000, workers=4, machine="n1-standard-4", disk_gb=50)
    (stage,) = proj.stages
    core_hours = 10_000 / 3600  # 2.778
    wall = 4 / 60 + core_hours / 16  # start-up + 625 s = 0.2403 h
    worker_hours = 4 * wall  # 0.9611
    assert stage.core_hours == pytest.approx(core_hours)
    assert stage.wall_hours == pytest.approx(wall)
    assert stage.worker_hours == pytest.approx(worker_hours)
    assert stage.output_mb == pytest.approx(500)
    assert stage.cost.vcpu == pytest.approx(worker_hours * 4 * 0.056)  # 0.2153
    assert stage.cost.memory == pytest.approx(worker_hours * 15 * 0.003557)  # 0.0513
    assert stage.cost.disk == pytest.approx(worker_hours * 50 * 0.000054)  # 0.0026
    assert stage.cost.shuffle == pytest.approx(0.5 * 0.011)  # 500 MB shuffled
    assert stage.cost.total == pytest.approx(0.27467, abs=1e-5)


def test_a_phase_limited_to_one_core_sets_the_wall_time():
    rates = [project.StageRate("read", (project.Phase("read", 3.6, max_parallel=1),
                                        project.Phase("work", 3.6)), input_scale=0.5)]
    proj = project.projection(rates, 2000, workers=2, machine="n2-standard-8",
                              startup_minutes=0, core_speed=2.0)
    read, work = proj.stages[0].phases
    # 1,000 MB (input_scale 0.5) × 3.6 s / speed 2 = 0.5 core-hours each
    assert read.core_hours == pytest.approx(0.5) and read.cores == 1
    assert read.wall_hours == pytest.approx(0.5)
    assert work.cores == 16 and work.wall_hours == pytest.approx(0.5 / 16)
    assert proj.stages[0].wall_hours == pytest.approx(0.5 + 0.5 / 16)


def test_totals_are_the_sums_of_the_stages_and_ssd_costs_more():
    rates = [project.StageRate(n, (project.Phase("p", s),))
             for n, s in (("a", 1.0), ("b", 5.0))]
    proj = project.projection(rates, 500, workers=3, machine="e2-standard-4")
    assert proj.wall_hours == pytest.approx(sum(s.wall_hours for s in proj.stages))
    assert proj.cost.total == pytest.approx(sum(s.cost.total for s in proj.stages))
    assert proj.to_dict()["totals"]["worker_hours"] == pytest.approx(proj.worker_hours)
    ssd = project.projection(rates, 500, workers=3, machine="e2-standard-4", ssd=True)
    assert ssd.cost.disk == pytest.approx(proj.cost.disk * 0.000298 / 0.000054)


def test_machine_types():
    for name in ("n1-standard-1", "n1-standard-32", "n1-highmem-16", "n2-standard-32",
                 "n2-highmem-2", "e2-standard-16", "c2-standard-30"):
        assert name in prices.MACHINE_TYPES
    assert prices.machine_type("n1-standard-4") == prices.MachineType("n1-standard-4", 4, 15.0)
    assert prices.machine_type("n2-highmem-16").memory_gb == 128
    assert prices.machine_type("c2-standard-30").memory_gb == 120


def test_unknown_machine_type_lists_valid_ones():
    with pytest.raises(ValueError) as err:
        prices.machine_type("n1-standard-3")
    message = str(err.value)
    assert "unknown machine type 'n1-standard-3'" in message
    assert "n1-standard-4" in message and "n2-highmem-{2,4,8,16}" in message


def test_memory_warning_under_1_gb_per_vcpu():
    assert prices.memory_warning(prices.machine_type("n1-standard-4")) is None
    assert "0.90 GB per vCPU" in prices.memory_warning(prices.machine_type("n1-highcpu-8"))


def test_prices_are_the_stated_list_prices():
    p = prices.DATAFLOW_BATCH_US_CENTRAL1
    assert (p.vcpu_hour, p.memory_gb_hour, p.pd_standard_gb_hour, p.pd_ssd_gb_hour,
            p.shuffle_gb) == (0.056, 0.003557, 0.000054, 0.000298, 0.011)
    assert p.region == "us-central1" and p.source.startswith("https://cloud.google.com/")


# ----------------------------------------------------------------------------- the command


def test_detect_kind():
    assert estimate.detect_kind([(1, b'{"index":{"_type":"_doc","_id":"1"}}')]) == "wiki"
    assert estimate.detect_kind([(1, b""), (2, b'{"title":"t","text":"x"}')]) == "wiki"
    assert estimate.detect_kind([(1, "吾輩は猫である。".encode())]) == "cc100"
    assert estimate.detect_kind([(1, b"[1, 2]")]) == "cc100"


def test_read_sample_plain_and_gzip(tmp_path):
    plain = tmp_path / "ja.txt"
    plain.write_text("一行目です。\n二行目です。\n\n三行目。\n", encoding="utf-8")
    sample = estimate.read_sample(str(plain), 10)
    assert (sample.compression, sample.ratio) == ("none", 1.0)
    assert [line for _, line in sample.lines] == ["一行目です。".encode()]
    sample = estimate.read_sample(str(WIKI_DUMP), 1000)
    assert sample.compression == "gzip" and sample.whole_file
    assert sample.ratio == pytest.approx(1_487_295 / WIKI_DUMP.stat().st_size)
    assert 1000 <= sample.nbytes < 1_487_295


def test_a_wrong_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="gave no corpus document: is it Wikipedia"):
        estimate.main(["--input", str(CC100), "--kind", "wiki", *FAST])


@pytest.fixture(scope="module")
def wiki_report():
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert estimate.main(["--input", str(WIKI_DUMP), "--json", *FAST]) == 0
    return json.loads(out.getvalue()), err.getvalue()


def test_wiki_dump_is_detected_and_its_gzip_ratio_measured(wiki_report):
    report, stderr = wiki_report
    assert report["kind"] == "wiki" == report["detected_kind"]
    size = WIKI_DUMP.stat().st_size
    assert report["input"]["compression"] == "gzip"
    assert report["input"]["ratio_whole_file"]  # the fixture is smaller than 4 MB
    assert report["input"]["decompression_ratio"] == pytest.approx(1_487_295 / size)
    assert report["input"]["projected_mb"] == pytest.approx(1.487295)
    assert report["sample"]["pages"] > 0 and report["sample"]["instances"] > 0
    assert "measuring wiki-corpus on 0.3 MB of sample" in stderr
    assert "measuring pretraining-data" in stderr


def test_wiki_all_three_stages_have_positive_rates(wiki_report):
    report, _ = wiki_report
    stages = report["stages"]
    assert [s["name"] for s in stages] == ["wiki-corpus", "train-vocab", "pretraining-data"]
    for stage in stages:
        assert stage["measured"]["mb_per_s_per_core"] > 0
        assert stage["core_hours"] > 0 and stage["cost"]["total"] > 0
        assert all(v > 0 for v in stage["measured"]["seconds_per_mb"].values())
    assert [p["name"] for p in stages[0]["phases"]] == ["read", "split", "write"]
    assert stages[0]["phases"][0]["cores"] == 1  # one file: read by one core
    assert stages[2]["measured"]["instances_per_s_per_core"] > 0
    assert 700 < stages[2]["bytes_per_record"] < 1000  # seq 128, 20 predictions
    assert stages[2]["input_mb"] == pytest.approx(stages[0]["output_mb"])


def test_json_totals_equal_the_sum_of_the_stages(wiki_report):
    report, _ = wiki_report
    stages, totals = report["stages"], report["totals"]
    for key in ("core_hours", "wall_hours", "worker_hours"):
        assert totals[key] == pytest.approx(sum(s[key] for s in stages))
    for key in ("vcpu", "memory", "disk", "shuffle", "total"):
        assert totals["cost"][key] == pytest.approx(sum(s["cost"][key] for s in stages))
    assert report["prices"]["date"] and any("list prices" in a for a in report["assumptions"])
    assert report["cluster"]["sdk_processes"] == 32 * 4  # the defaults


def test_the_text_report_is_a_table_with_prices_and_assumptions(wiki_report):
    text = estimate.render(wiki_report[0])
    assert text.startswith("bertjp estimate: Wikipedia Cirrussearch dump (detected)")
    assert "gzip × 4.90 (measured on the whole file)" in text
    for word in ("wiki-corpus", "train-vocab", "pretraining-data", "total", "MB/s/core",
                 "worker-h", "instances/s per core", "vCPU-hour $0.056", "assumptions:"):
        assert word in text


def test_cc100_is_detected(capsys):
    assert estimate.main(["--input", str(CC100), *FAST, "--workers", "2",
                          "--machine-type", "n1-highcpu-4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("bertjp estimate: CC-100 text (detected)")
    assert "xz × 3.4" in out
    assert "cc100-corpus" in out and "pretraining-data" in out
    assert "0.90 GB per vCPU" in out  # the memory warning
    assert "2 × n1-highcpu-4 (4 vCPU, 3.6 GB) = 8 SDK processes" in out


def test_a_glob_matching_nothing_is_a_clear_error(tmp_path, capsys):
    pattern = str(tmp_path / "nothing-*.json.gz")
    with pytest.raises(FileNotFoundError, match="matches no file"):
        estimate.main(["--input", pattern])
    assert bertjp_cli.main(["estimate", "--input", pattern]) == 1
    assert f"--input {pattern!r} matches no file" in capsys.readouterr().err


def test_the_command_is_registered():
    assert bertjp_cli.COMMANDS["estimate"][0] == "bertjp_cli.estimate:main"
