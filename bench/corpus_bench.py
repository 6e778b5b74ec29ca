"""Benchmark of ``bertjp wiki-corpus``: throughput against raw MeCab, and peak memory.

Everything is measured side by side in one run (see bench/README.md):

1. inputs: the test fixture's 50 pages replicated (distinct page ids) into a "1x"
   dump of about ``--base-mb`` MB of page text, and dumps ``k`` times larger for
   each other scale ``k`` in ``--scales``;
2. the raw MeCab rate: ``fugashi.GenericTagger.parse`` (unidic-lite) over the 1x
   page texts, in this process;
3. the pipeline rate on one worker (``--direct_num_workers 1``), from the
   command's own "finished in X s" line and from the whole process's wall time;
4. peak RSS with ``--direct_running_mode multi_processing --direct_num_workers 1``:
   the runner process (which holds the local shuffle) and the largest SDK worker.

Usage: ``.venv/bin/python bench/corpus_bench.py [--quick] [--base-mb MB]
[--scales 1,10] [--keep]``. Needs only the standard library and psutil.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "jawiki-20211101-cirrussearch-content.json.gz"
BERTJP = Path(sys.executable).parent / "bertjp"
NUM_SHARDS = 8
SAMPLE_S = 0.05
ID_STRIDE = 10_000_000  # page_id offset between copies; far above the fixture's ids
FINISHED = re.compile(r"finished in ([0-9.]+) s")
MB = 1e6


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base-mb", type=float, default=16.0,
                   help="MB (1e6 bytes, UTF-8) of page text in the 1x dump (default 16)")
    p.add_argument("--scales", default="1,10",
                   help="comma-separated multiples of the 1x dump to run (default 1,10)")
    p.add_argument("--quick", action="store_true", help="smoke run: --base-mb 2 --scales 1,10")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args(argv)
    if args.quick:
        args.base_mb, args.scales = 2.0, "1,10"
    args.scales = sorted({int(s) for s in args.scales.split(",") if s.strip()})
    return args


def log(msg: str) -> None:
    """Progress line, flushed at once."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load_fixture(path: Path = FIXTURE) -> list[tuple[dict, dict]]:
    """The fixture's (action, page) line pairs, as dicts."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    pairs = []
    for action, page in zip(lines[::2], lines[1::2], strict=True):
        pairs.append((json.loads(action), json.loads(page)))
    assert all("index" in a and "text" in p for a, p in pairs), "unexpected fixture layout"
    return pairs


def text_bytes(pairs: list[tuple[dict, dict]]) -> int:
    """UTF-8 bytes of the pages' ``text`` fields."""
    return sum(len(page["text"].encode("utf-8")) for _, page in pairs)


def write_dump(pairs: list[tuple[dict, dict]], copies: int, path: Path) -> int:
    """Writes ``copies`` copies of the pages with distinct page ids; returns page count.

    Copy ``c`` of page ``i`` gets ``page_id = i + c * ID_STRIDE`` (and the same
    ``_id`` in its action line). JSON is ASCII-escaped and compact, as in the dump.
    """
    n = 0
    with gzip.open(path, "wt", encoding="ascii", compresslevel=6) as f:
        for c in range(copies):
            for action, page in pairs:
                new_id = int(page["page_id"]) + c * ID_STRIDE
                act = {"index": {**action["index"], "_id": str(new_id)}}
                f.write(json.dumps(act, separators=(",", ":")) + "\n")
                f.write(json.dumps({**page, "page_id": new_id}, separators=(",", ":")) + "\n")
                n += 1
    return n


def build_inputs(tmp: Path, base_mb: float, scales: list[int]) -> dict[int, dict]:
    """Writes one dump per scale; returns ``{scale: {path, pages, text_mb}}``."""
    pairs = load_fixture()
    per_copy = text_bytes(pairs)
    copies = max(1, math.ceil(base_mb * MB / per_copy))
    inputs = {}
    for scale in scales:
        path = tmp / f"dump-{scale}x.json.gz"
        pages = write_dump(pairs, copies * scale, path)
        inputs[scale] = {"path": path, "pages": pages, "copies": copies * scale,
                         "text_mb": per_copy * copies * scale / MB,
                         "gz_mb": path.stat().st_size / MB}
        log(f"input {scale}x: {pages:,} pages ({copies * scale} copies of the fixture), "
            f"{inputs[scale]['text_mb']:.1f} MB page text, {inputs[scale]['gz_mb']:.1f} MB gzip")
    return inputs


def read_texts(path: Path) -> list[str]:
    """The ``text`` field of every page line of a dump."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [obj["text"] for obj in map(json.loads, f) if "text" in obj]


def raw_mecab_rate(path: Path) -> dict:
    """Times ``tagger.parse(text)`` (fugashi, unidic-lite) over a dump's page texts.

    Returns ``{mb, seconds, rate}``; ``rate`` is MB (1e6 UTF-8 bytes) per second.
    """
    import fugashi
    import unidic_lite

    texts = read_texts(path)
    size = sum(len(t.encode("utf-8")) for t in texts)
    tagger = fugashi.GenericTagger(f"-d {unidic_lite.DICDIR} -r {unidic_lite.DICDIR}/mecabrc")
    for text in texts[:50]:  # warm up: fault in the mmap'd dictionary before timing
        tagger.parse(text)
    start = time.perf_counter()
    for text in texts:
        tagger.parse(text)
    seconds = time.perf_counter() - start
    return {"mb": size / MB, "seconds": seconds, "rate": size / MB / seconds}


def tree_memory(root: psutil.Process) -> dict[int, tuple[int, int]]:
    """``(rss, private)`` bytes of ``root`` and each live descendant, by pid.

    ``private`` is RSS minus its file-backed/shared part (Linux ``statm``), i.e.
    without the mmap'd MeCab dictionary and shared libraries.
    """
    procs = [root]
    try:
        procs += root.children(recursive=True)
    except psutil.Error:
        pass
    mem = {}
    for proc in procs:
        try:
            info = proc.memory_info()
        except psutil.Error:
            continue
        mem[proc.pid] = (info.rss, info.rss - getattr(info, "shared", 0))
    return mem


def update_peaks(peak: dict, mem: dict[int, tuple[int, int]], runner_pid: int) -> None:
    """Folds one sample of :func:`tree_memory` into ``peak``."""
    peak["tree"] = max(peak["tree"], sum(rss for rss, _ in mem.values()))
    runner = mem.pop(runner_pid, (0, 0))
    peak["runner"] = max(peak["runner"], runner[0])
    peak["runner_private"] = max(peak["runner_private"], runner[1])
    for rss, private in mem.values():  # SDK workers (and their tiny /bin/sh wrappers)
        peak["worker"] = max(peak["worker"], rss)
        peak["worker_private"] = max(peak["worker_private"], private)


def run_command(dump: Path, out_dir: Path, beam_flags: list[str], sample: bool) -> dict:
    """Runs ``bertjp wiki-corpus`` once; returns times and (if ``sample``) peak RSS.

    With ``sample`` the process tree is polled every ``SAMPLE_S`` seconds for the
    peak RSS (and private RSS) of the command's own process (the runner), of the
    largest other process (an SDK worker), and of the whole tree.
    """
    out_dir.mkdir(parents=True)
    cmd = [str(BERTJP), "wiki-corpus", "--input", str(dump), "--output",
           str(out_dir / "corpus"), "--num-shards", str(NUM_SHARDS), *beam_flags]
    log_path = out_dir / "command.log"
    peak = dict.fromkeys(("runner", "runner_private", "worker", "worker_private", "tree"), 0)
    with open(log_path, "wb") as logf:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=out_dir)
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            if sample:
                update_peaks(peak, tree_memory(root), proc.pid)
            time.sleep(SAMPLE_S)
        wall = time.perf_counter() - start
    output = log_path.read_text(encoding="utf-8", errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{output[-3000:]}")
    found = FINISHED.findall(output)
    return {"wall": wall, "pipeline": float(found[-1]) if found else float("nan"),
            "peak": peak, "summary": summary_lines(output)}


def summary_lines(output: str) -> list[str]:
    """The command's "documents:" and "sentences:" summary lines, stripped."""
    keep = ("documents:", "sentences:")
    return [line.strip() for line in output.splitlines() if line.strip().startswith(keep)]


ONE_WORKER = ["--direct_num_workers", "1"]
MULTI_PROCESSING = ["--direct_running_mode", "multi_processing", "--direct_num_workers", "1"]


def run_scale(tmp: Path, scale: int, spec: dict) -> dict:
    """The one-worker rate run and the multi-processing memory run for one scale."""
    results = {}
    for mode, flags, sample in (("one_worker", ONE_WORKER, False),
                                ("multi_processing", MULTI_PROCESSING, True)):
        log(f"running wiki-corpus {scale}x, {mode} ({' '.join(flags)}) ...")
        out_dir = tmp / f"out-{scale}x-{mode}"
        res = run_command(spec["path"], out_dir, flags, sample)
        line = (f"  done: pipeline {res['pipeline']:.1f} s, wall {res['wall']:.1f} s; "
                + "; ".join(res["summary"]))
        if sample:
            p = res["peak"]
            line += (f"; peak RSS runner {p['runner'] / MB:.0f} MB (private "
                     f"{p['runner_private'] / MB:.0f}), largest worker {p['worker'] / MB:.0f} MB "
                     f"(private {p['worker_private'] / MB:.0f}), tree {p['tree'] / MB:.0f} MB")
        log(line)
        for shard in out_dir.glob("corpus*"):  # keep the log, drop the (large) shards
            if shard.suffix != ".json":
                shard.unlink()
        results[mode] = res
    return results


def stream_worker(dump: str, out_dir: str) -> None:
    """Runs wiki-corpus's DoFns as a streaming worker would, outside the local runner.

    ``ReadPagesFn`` feeds ``SplitPagesFn`` element by element and the keyed
    documents are sorted and written in chunks of ``chunk_bytes``, as
    ``WriteShards`` does; nothing else holds data. Prints the process's peak RSS.
    """
    import resource

    from apache_beam.pvalue import TaggedOutput

    from pipelines.wiki_corpus import ReadPagesFn, SplitPagesFn, WikiCorpusConfig

    config = WikiCorpusConfig(inputs=(dump,), output=f"{out_dir}/corpus")
    reader, splitter = ReadPagesFn(config.max_line_bytes), SplitPagesFn(config)
    splitter.setup()
    reader.start_bundle()
    splitter.start_bundle()
    chunk, size, chunks, docs = [], 0, 0, 0
    for page in reader.process(dump):
        if isinstance(page, TaggedOutput):
            continue
        for key, doc in splitter.process(page):
            chunk.append((key, doc))
            size += len(doc)
            docs += 1
            if size >= config.chunk_bytes:
                _write_chunk(chunk, Path(out_dir) / f"chunk-{chunks}")
                chunk, size, chunks = [], 0, chunks + 1
    _write_chunk(chunk, Path(out_dir) / f"chunk-{chunks}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"documents": docs, "chunks": chunks + 1, "peak_rss": peak}))


def _write_chunk(chunk: list, path: Path) -> None:
    with open(path, "wb") as f:
        for _, doc in sorted(chunk):
            f.write(doc)
    path.unlink()  # only the memory matters here


def control_pipeline(dump: str) -> None:
    """A pipeline with no bertjp code: the dump's page texts → Reshuffle → len.

    Run under the same multi-processing local runner as the real job, it shows
    how much worker memory the local runner itself takes for that data volume.
    """
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    def texts(path):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                page = json.loads(line)
                if "index" not in page:
                    yield page["page_id"], page["text"]

    options = PipelineOptions(["--runner=FnApiRunner", *MULTI_PROCESSING])
    with beam.Pipeline(options=options) as p:
        _ = (p | beam.Create([dump]) | beam.FlatMap(texts) | beam.Reshuffle()
             | beam.Map(lambda kv: len(kv[1])) | beam.CombineGlobally(sum))


def run_helper(args: list[str], sample: bool) -> dict:
    """Runs this script with ``args`` in a subprocess; returns its peaks and output."""
    peak = dict.fromkeys(("runner", "runner_private", "worker", "worker_private", "tree"), 0)
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=ROOT)
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        if sample:
            update_peaks(peak, tree_memory(root), proc.pid)
        time.sleep(SAMPLE_S)
    out = proc.stdout.read().decode()
    if proc.returncode:
        raise RuntimeError(f"{args} exited {proc.returncode}")
    return {"peak": peak, "output": out}


def run_memory_controls(tmp: Path, scale: int, spec: dict) -> dict:
    """Our DoFns as a streaming worker, and the no-bertjp control pipeline."""
    log(f"running wiki-corpus's DoFns as a streaming worker, {scale}x ...")
    out_dir = tmp / f"stream-{scale}x"
    out_dir.mkdir()
    stream = json.loads(run_helper(["--stream-worker", str(spec["path"]), str(out_dir)],
                                   sample=False)["output"].strip().splitlines()[-1])
    log(f"  done: {stream['documents']:,} documents, {stream['chunks']} chunks, peak RSS "
        f"{stream['peak_rss'] / MB:.0f} MB")
    log(f"running the control pipeline (page texts -> Reshuffle -> len), {scale}x ...")
    control = run_helper(["--control", str(spec["path"])], sample=True)["peak"]
    log(f"  done: peak RSS largest worker {control['worker'] / MB:.0f} MB (private "
        f"{control['worker_private'] / MB:.0f})")
    return {"stream": stream["peak_rss"], "control": control["worker"],
            "control_private": control["worker_private"]}


def pct(rate: float, ref: float) -> str:
    """``rate`` as a percentage of ``ref``."""
    return f"{100 * rate / ref:.0f}%"


def rate_lines(mecab: list[dict], inputs: dict, runs: dict) -> list[str]:
    """Throughput lines: raw MeCab (mean of the timings), then each run's two rates."""
    ref = sum(m["rate"] for m in mecab) / len(mecab)
    each = ", ".join(f"{m['rate']:.2f}" for m in mecab)
    lines = [f"raw MeCab (fugashi parse, unidic-lite): {ref:.2f} MB/s "
             f"(mean of {each} MB/s, timed before and after the runs, "
             f"{mecab[0]['mb']:.1f} MB each)"]
    for mode, label in (("one_worker", "1 worker"),
                        ("multi_processing", "multi_processing 1 worker")):
        for scale, spec in inputs.items():
            res, mb = runs[scale][mode], spec["text_mb"]
            pipe, wall = mb / res["pipeline"], mb / res["wall"]
            lines.append(
                f"wiki-corpus {label}, {scale}x ({mb:.0f} MB): {pipe:.2f} MB/s pipeline "
                f"({pct(pipe, ref)} of MeCab; {res['pipeline']:.1f} s), {wall:.2f} MB/s wall "
                f"({pct(wall, ref)}; {res['wall']:.1f} s)")
    lines.append("  target: 1 worker >= 60% of the raw MeCab rate "
                 "(multi_processing rows are for information)")
    return lines


MEMORY_ROWS = (
    ("worker", "peak RSS SDK worker (largest)"),
    ("worker_private", "  private part (RSS - file-backed/shared: no MeCab dict mmap)"),
    ("runner", "peak RSS runner (holds the local runner's in-memory shuffle)"),
    ("runner_private", "  private part"),
    ("tree", "peak RSS whole process tree (sum)"),
)


def _scale_row(label: str, peaks: dict[int, float]) -> str:
    """``label: 1x N MB, 10x M MB (10x/1x xR)`` from peaks in MB by scale."""
    scales = list(peaks)
    parts = [f"{s}x {peaks[s]:.0f} MB" for s in scales]
    ratios = [f"{s}x/{scales[0]}x x{peaks[s] / peaks[scales[0]]:.2f}"
              for s in scales[1:] if peaks[scales[0]]]
    return f"{label}: " + ", ".join(parts) + (f" ({', '.join(ratios)})" if ratios else "")


def memory_lines(inputs: dict, runs: dict) -> list[str]:
    """Peak RSS lines of the multi-processing runs, with ratios to the smallest scale."""
    scales = list(inputs)
    lines = [_scale_row(label, {s: runs[s]["multi_processing"]["peak"][key] / MB
                                for s in scales})
             for key, label in MEMORY_ROWS]
    lines.append("  the local runner (FnApiRunner) pushes a stage's whole input into its worker, "
                 "so its workers grow with the input whatever the code; the control shows it:")
    for key, label in (("control", "control pipeline, no bertjp code (page texts -> "
                                   "Reshuffle -> len), largest worker"),
                       ("control_private", "  private part"),
                       ("stream", "wiki-corpus DoFns as a streaming worker (read -> split -> "
                                  "sorted 16 MB chunks), peak RSS")):
        lines.append(_scale_row(label, {s: runs[s]["controls"][key] / MB for s in scales}))
    lines.append("  target: our worker code flat as the input grows (ratio near 1); the runner "
                 "holds the local shuffle and grows (on Dataflow the shuffle is a service)")
    return lines


def timed_mecab(path: Path, when: str) -> dict:
    """:func:`raw_mecab_rate` with progress lines."""
    log(f"timing raw MeCab over the {path.name} page texts ({when} the pipeline runs) ...")
    mecab = raw_mecab_rate(path)
    log(f"  done: {mecab['mb']:.1f} MB in {mecab['seconds']:.1f} s = {mecab['rate']:.2f} MB/s")
    return mecab


def main(argv=None) -> int:
    """Builds the inputs, runs every measurement, prints the table."""
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bertjp-corpus-bench-"))
    log(f"bertjp corpus bench: base {args.base_mb:g} MB, scales {args.scales}, "
        f"{os.cpu_count()} CPUs, temp dir {tmp}")
    try:
        inputs = build_inputs(tmp, args.base_mb, args.scales)
        base = inputs[args.scales[0]]["path"]
        mecab = [timed_mecab(base, "before")]
        runs = {scale: run_scale(tmp, scale, spec) for scale, spec in inputs.items()}
        for scale, spec in inputs.items():
            runs[scale]["controls"] = run_memory_controls(tmp, scale, spec)
        mecab.append(timed_mecab(base, "after"))
        print("\n== results ==", flush=True)
        print("\n".join(rate_lines(mecab, inputs, runs) + memory_lines(inputs, runs)))
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--stream-worker"]:
        sys.exit(stream_worker(*sys.argv[2:4]))
    if sys.argv[1:2] == ["--control"]:
        sys.exit(control_pipeline(sys.argv[2]))
    sys.exit(main())
