"""The estimate as a JSON-ready dict, and as text.

:func:`build_report` gathers the input, the sample, the projection, what was
measured, the assumptions and the warnings; :func:`render` prints it as tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bertjp.defaults import PRESETS
from bertjp_cli.estimate.config import EstimateConfig
from bertjp_cli.estimate.prices import memory_warning
from bertjp_cli.estimate.project import Projection, StageRate, stage_details
from bertjp_cli.estimate.sample import KINDS, MB

if TYPE_CHECKING:
    from bertjp_cli.estimate.measure import Measured

__all__ = ["build_report", "render"]


def _input(config: EstimateConfig, m: Measured, files: list, input_mb: float) -> dict:
    """The input: files, compression, decompression ratio, the size projected for."""
    return {
        "patterns": list(config.inputs), "files": len(files),
        "compressed_mb": sum(size for _, size in files) / MB,
        "compression": m.sample.compression, "decompression_ratio": m.sample.ratio,
        "ratio_measured_on_mb": m.sample.ratio_bytes / MB,
        "ratio_whole_file": m.sample.whole_file, "projected_mb": input_mb,
        "projected_mb_given": config.project_mb is not None}


def _sample(m: Measured) -> dict:
    """What the sample held and gave."""
    return {
        "path": m.sample.path, "mb": m.sample.nbytes / MB, "lines": len(m.sample.lines),
        "pages": m.corpus.pages, "documents": m.corpus.documents,
        "sentences": m.vocab.sentences, "corpus_mb": m.corpus.output_bytes / MB,
        "tokens": m.data.tokens, "instances": m.data.instances}


def build_report(config: EstimateConfig, files: list, m: Measured, input_mb: float,
                 rates: list[StageRate], proj: Projection, notes) -> dict:
    """The estimate as a JSON-ready dict.

    Args:
      config: the estimate's settings.
      files: ``(path, size)`` of the matched input files.
      m: what was measured on the sample.
      input_mb: the decompressed MB projected for.
      rates: the stages' rates.
      proj: their projection.
      notes: warnings about the vocabulary.

    Returns:
      input, sample, cluster, stages (projected and measured), totals, prices,
      assumptions and warnings.
    """
    report = {"kind": m.kind, "detected_kind": m.detected,
              "input": _input(config, m, files, input_mb), "sample": _sample(m)}
    report.update(proj.to_dict())
    stage_details(m, rates, report["stages"])
    report["assumptions"] = _assumptions(m, proj, config)
    report["warnings"] = _warnings(m, proj, notes)
    return report


def _cpu_name() -> str:
    """This machine's CPU model, from ``/proc/cpuinfo``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "this machine's CPU"


def _recipe() -> str:
    """The v3 recipe's seq/predictions/dupe of each stage: ``CC-100 128/19/5, ...``."""
    return ", ".join(f"{label} {p.max_seq_length}/{p.max_predictions_per_seq}/{p.dupe_factor}"
                     for label, p in (("CC-100", PRESETS["v3-cc100"]),
                                      ("Wikipedia", PRESETS["v3-wikipedia"])))


def _assumptions(m: Measured, proj: Projection, config: EstimateConfig) -> list[str]:
    """Everything the figures assume, prices first."""
    p = proj.prices
    return [
        f"prices: Dataflow batch list prices, {p.region}, written down {p.date} from "
        f"{p.source}; list prices to be checked, no discounts: vCPU-hour {_price(p.vcpu_hour)}, "
        f"memory GB-hour {_price(p.memory_gb_hour)}, standard PD GB-hour "
        f"{_price(p.pd_standard_gb_hour)}, SSD PD GB-hour {_price(p.pd_ssd_gb_hour)}, "
        f"Shuffle {_price(p.shuffle_gb)} per GB",
        f"each stage is one Dataflow job with a fixed {proj.startup_minutes:g}-minute start-up; "
        "the jobs run one after another; every worker is billed for its whole job (a fixed "
        "--num_workers; autoscaling makes the narrow phases cheaper)",
        f"one SDK process per vCPU ({proj.cores} in all); rates are CPU seconds of one "
        f"process on {_cpu_name()}, scaled by --core-speed {proj.core_speed:g}: Dataflow "
        "cores differ (a vCPU is a hyperthread; try 0.7 when two processes share a core)",
        "a compressed input file is read by one core, and each output shard is written and "
        "gzipped by one core (the 'cores' column)",
        f"the sample is the first {m.sample.nbytes / MB:.2f} MB of {m.sample.path}; the "
        "whole input is assumed to look like it (decompression ratio, pages, sentences)",
        f"corpus: {m.corpus_shards} gzipped shards (--gzip); pretraining-data: "
        f"{m.data_shards} shards, {m.data.subword}, --max-seq-length "
        f"{config.max_seq_length}, --max-predictions-per-seq {config.max_predictions_per_seq}, "
        f"--dupe-factor {config.dupe_factor} (recipe README: {_recipe()}), whole-word masking",
        f"train-vocab counts the MeCab words of a {config.vocab_sample_sentences:,}-sentence "
        "sample of this corpus (the recipe samples Wikipedia only); sample-sentences is not "
        "included, and the one-worker WordPiece training after the counting is timed on the "
        "sample's counts but not projected (it grows with the distinct words, not the MB)",
        "shuffle: the bytes through Reshuffle/GroupByKey, measured on the sample with Beam's "
        "coder (pages, documents, lines and word counts, token codes × dupe factor, records); "
        "Beam's own per-element work (encoding, shuffle I/O: ~10 % in the README benchmarks) "
        "is not in the rates; MB = 10^6 bytes, GB = 10^9 bytes",
    ]


def _narrow_phases(proj: Projection) -> list[str]:
    """Warnings for phases that can use few cores and take most of their job."""
    warnings = []
    for stage in proj.stages:
        busy = stage.wall_hours - proj.startup_minutes / 60
        for phase in stage.phases:
            if phase.cores < proj.cores and phase.wall_hours > max(busy / 2, 1 / 6):
                fix = ("split the input into more files" if phase.name == "read"
                       else "write more shards (--num-shards)")
                warnings.append(
                    f"{stage.name}: '{phase.name}' can use only {phase.cores} core(s) and "
                    f"takes {_duration(phase.wall_hours)} of the job's {_duration(busy)}: "
                    f"{fix}")
    return warnings


def _warnings(m: Measured, proj: Projection, notes) -> list[str]:
    """What the reader should know: vocabulary notes, memory, kind, sample size, phases."""
    warnings = list(notes)
    memory = memory_warning(proj.machine)
    if memory:
        warnings.append(memory)
    if m.kind != m.detected:
        warnings.append(f"--kind {m.kind}, but the sample looks like {KINDS[m.detected]}")
    if m.corpus.documents < 20:
        warnings.append(f"the sample has only {m.corpus.documents} documents: the rates "
                        "are rough; use a larger --sample-mb")
    return warnings + _narrow_phases(proj)


# ----------------------------------------------------------------------------- printing


def _num(x: float) -> str:
    """A figure with about three significant digits."""
    if x == 0:
        return "0"
    if abs(x) < 0.001:
        return "<0.001"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.2g}"


def _usd(x: float) -> str:
    """Dollars: cents, or four decimals under a cent."""
    if 0 < x < 0.0001:
        return "<0.0001"
    return f"{x:,.2f}" if x >= 0.01 or x == 0 else f"{x:.4f}"


def _price(x: float) -> str:
    """A unit price, as precise as it is written down."""
    return "$" + f"{x:.6f}".rstrip("0").rstrip(".")


def _duration(hours: float) -> str:
    """``12m 05s`` or ``3h 20m``."""
    seconds = round(hours * 3600)
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned first column, right-aligned others."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row):
        """One row, padded to the widths."""
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        return "  ".join(cells).rstrip()

    return [line(header)] + [line(r) for r in rows]


def _header(r: dict) -> list[str]:
    """Kind, input, sample and cluster lines."""
    i, s, c = r["input"], r["sample"], r["cluster"]
    ratio = ("" if i["compression"] == "none" else
             f", {i['compression']} × {i['decompression_ratio']:.2f} (measured on "
             + ("the whole file)" if i["ratio_whole_file"]
                else f"{i['ratio_measured_on_mb']:.1f} MB)"))
    found = f"{s['pages']} pages → " if s["pages"] is not None else ""
    mt = c["machine_type"]
    return [
        f"bertjp estimate: {KINDS[r['kind']]}"
        + (" (detected)" if r["kind"] == r["detected_kind"] else " (--kind)"),
        f"input    {i['files']} file(s), {_num(i['compressed_mb'])} MB{ratio}"
        + (f"; projected for {_num(i['projected_mb'])} MB (--project-mb)"
           if i["projected_mb_given"] else f" = {_num(i['projected_mb'])} MB to process"),
        f"sample   first {s['mb']:.2f} MB of {s['path']}: {found}{s['documents']:,} documents, "
        f"{s['sentences']:,} sentences, {s['corpus_mb']:.2f} MB of corpus, "
        f"{s['tokens']:,} tokens, {s['instances']:,} instances",
        f"cluster  {c['workers']} × {mt['name']} ({mt['vcpus']} vCPU, {mt['memory_gb']:g} GB) "
        f"= {c['sdk_processes']} SDK processes, {c['disk_gb']:g} GB {c['disk_type']} each",
    ]


def _stage_table(r: dict) -> list[str]:
    """One row per stage, and the totals."""
    rows = []
    for s in r["stages"]:
        rate = s["measured"]["mb_per_s_per_core"]
        rows.append([s["name"], _num(s["input_mb"]), _num(s["output_mb"]),
                     _num(rate) if rate else "-", _num(s["core_hours"]),
                     _duration(s["wall_hours"]), _num(s["worker_hours"]),
                     _usd(s["cost"]["total"])])
    t = r["totals"]
    rows.append(["total", "", "", "", _num(t["core_hours"]), _duration(t["wall_hours"]),
                 _num(t["worker_hours"]), _usd(t["cost"]["total"])])
    return _table(["stage", "input MB", "output MB", "MB/s/core", "core-h", "wall",
                   "worker-h", "cost USD"], rows)


def _phase_table(r: dict) -> list[str]:
    """One row per phase of each stage."""
    rows = []
    for s in r["stages"]:
        per_mb = s["measured"]["seconds_per_mb"]
        for n, p in enumerate(s["phases"]):
            rows.append([s["name"] if n == 0 else "", p["name"], _num(per_mb[p["name"]]),
                         str(p["cores"]), _num(p["core_hours"]), _duration(p["wall_hours"])])
    return _table(["phase", "", "CPU s/MB", "cores", "core-h", "wall"], rows)


def _cost_table(r: dict) -> list[str]:
    """Each stage's cost by resource, and the totals."""
    rows = [[s["name"], *(_usd(s["cost"][k]) for k in ("vcpu", "memory", "disk")),
             _num(s["shuffle_gb"]), _usd(s["cost"]["shuffle"]), _usd(s["cost"]["total"])]
            for s in r["stages"]]
    t = r["totals"]["cost"]
    rows.append(["total", *(_usd(t[k]) for k in ("vcpu", "memory", "disk")),
                 _num(sum(s["shuffle_gb"] for s in r["stages"])), _usd(t["shuffle"]),
                 _usd(t["total"])])
    return _table(["cost USD", "vCPU", "memory", "disk", "shuffle GB", "shuffle", "total"],
                  rows)


def _details(r: dict) -> list[str]:
    """One line per stage: what it writes or counts."""
    corpus, vocab, data = r["stages"]
    rate = data["measured"]["instances_per_s_per_core"]
    return [
        f"{corpus['name']}: writes {_num(corpus['written_gzip_mb'])} MB of gzipped corpus",
        f"train-vocab: {_num(vocab['sentences'])} sentences ({_num(vocab['input_mb'])} MB) "
        f"counted; the trainer took {_num(vocab['measured']['trainer_cpu_seconds'])} CPU s on "
        f"the sample's {vocab['measured']['distinct_words']:,} distinct words (not projected)",
        f"pretraining-data: {_num(rate or 0)} instances/s per core, "
        f"{_num(data['instances_per_corpus_mb'])} instances per corpus MB → "
        f"{_num(data['instances'])} instances of {_num(data['bytes_per_record'])} bytes; "
        f"writes {_num(data['written_gzip_mb'])} MB of gzipped TFRecords",
    ]


def render(report: dict) -> str:
    """The estimate as text: header, stage table, phases, costs, assumptions, warnings."""
    out = [*_header(report), "", *_stage_table(report), "", *_details(report), "",
           *_phase_table(report), "", *_cost_table(report), "", "assumptions:"]
    out += [f"  - {a}" for a in report["assumptions"]]
    if report["warnings"]:
        out += ["", "warnings:", *(f"  - {w}" for w in report["warnings"])]
    return "\n".join(out)

