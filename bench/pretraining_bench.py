"""Benchmark of ``bertjp pretraining-data``: instances per second per core, scaling, memory.

Same corpus and flags for every run (the issue's: ``--max-seq-length 128
--max-predictions-per-seq 19 --dupe-factor 5``, wordpiece with the released v3
vocabulary, whole-word masking). Measured side by side in one run (see bench/README.md):

1. inputs: the fixtures' real text (the reference's Wikipedia corpus file and the
   CC-100 sample, both in corpus format) replicated into corpora of ``--sizes`` MB
   (10^6 UTF-8 bytes), each written as 4 files;
2. raw MeCab on the same text (``fugashi.GenericTagger`` wakati, unidic-lite), in
   this process: the floor no tokenizing job can go below;
3. the command on one worker (``--direct_num_workers 1``): instances per second
   of wall time and per CPU-second of the whole process tree (user + system);
4. the command with ``--direct_running_mode multi_processing`` and 1, then 2
   workers: the speedup of 2 workers over 1, and the local runner's process sizes;
5. our DoFns as a streaming worker (what a Dataflow worker holds): read →
   tokenize → a disk "shuffle" by bucket → one bucket at a time through
   ``CreateInstancesFn`` → records in sorted chunks of 16 MB, as ``WriteShards``;
   peak RSS of that process at each size.

The reference's ``create_pretraining_data.py`` is not run here (its code is not
part of this repository); the issue's measurement of it on this machine kind is
printed next to ours: 50 MB → 448,787 instances in 325 s (≈ 1,380 instances/s on
one core), peak RSS 2.59 GiB at 50 MB and 777 MiB at 5 MB.

Usage: ``.venv/bin/python bench/pretraining_bench.py [--sizes 5,50] [--quick] [--keep]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import lzma
import os
import pickle
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_bench import MB, log, tree_memory, update_peaks  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
WIKI = FIXTURES / "reference" / "make_corpus_wiki" / "corpus.unidic_lite.txt.gz"
CC100 = FIXTURES / "ja.txt.xz"
VOCAB = FIXTURES / "reference" / "vocab" / "wordpiece_unidic_lite"
BERTJP = Path(sys.executable).parent / "bertjp"
FLAGS = ["--max-seq-length", "128", "--max-predictions-per-seq", "19", "--dupe-factor", "5",
         "--num-shards", "8"]
NUM_FILES = 4
SAMPLE_S = 0.05
FINISHED = re.compile(r"finished in ([0-9.]+) s")
REFERENCE = {"rate_per_core": 448_787 / 325, "rss": {5: 777 * 2**20, 50: 2.59 * 2**30}}
GIB = 2**30


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="5,50", help="corpus sizes in MB (default 5,50)")
    p.add_argument("--quick", action="store_true", help="smoke run: --sizes 1,3")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--stream-worker", nargs=2, metavar=("CORPUS_DIR", "OUT_DIR"),
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.sizes = "1,3"
    args.sizes = sorted({float(s) for s in args.sizes.split(",") if s.strip()})
    return args


def base_documents() -> list[bytes]:
    """The fixtures' documents (lines + a blank line), as UTF-8 blocks."""
    docs = []
    for text in (gzip.decompress(WIKI.read_bytes()).decode("utf-8"),
                 lzma.decompress(CC100.read_bytes()).decode("utf-8")):
        for block in re.split(r"\n\s*\n", text):
            lines = [line.strip() for line in block.splitlines() if line.strip()]
            if lines:
                docs.append(("\n".join(lines) + "\n\n").encode("utf-8"))
    return docs


def write_corpus(docs: list[bytes], mb: float, out: Path) -> dict:
    """``mb`` MB of the documents, replicated in order, spread over ``NUM_FILES`` files."""
    out.mkdir(parents=True)
    files = [open(out / f"corpus-{i}.txt", "wb") for i in range(NUM_FILES)]
    size = n = 0
    try:
        while size < mb * MB:
            doc = docs[n % len(docs)]
            files[n % NUM_FILES].write(doc)
            size += len(doc)
            n += 1
    finally:
        for f in files:
            f.close()
    return {"dir": out, "bytes": size, "documents": n}


def raw_mecab_rate(corpus: Path, limit_mb: float = 5.0) -> dict:
    """Raw MeCab (wakati, unidic-lite) over up to ``limit_mb`` MB of the corpus's lines."""
    import fugashi
    import unidic_lite

    tagger = fugashi.GenericTagger(
        f"-d {unidic_lite.DICDIR} -r {os.path.join(unidic_lite.DICDIR, 'mecabrc')} -Owakati")
    lines, size = [], 0
    for path in sorted(corpus.glob("corpus-*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line and size < limit_mb * MB:
                lines.append(line)
                size += len(line.encode("utf-8"))
    for line in lines[:200]:
        tagger.parse(line)
    start = time.perf_counter()
    for line in lines:
        tagger.parse(line)
    seconds = time.perf_counter() - start
    return {"mb": size / MB, "seconds": seconds, "rate": size / MB / seconds}


def run_command(corpus: Path, out_dir: Path, beam_flags: list[str]) -> dict:
    """Runs ``bertjp pretraining-data`` once: times, CPU time, peak RSS, the manifest."""
    out_dir.mkdir(parents=True)
    cmd = [str(BERTJP), "pretraining-data", "--input", str(corpus / "corpus-*.txt"),
           "--vocab", str(VOCAB), "--output", str(out_dir / "data"), *FLAGS, *beam_flags]
    peak = dict.fromkeys(("runner", "runner_private", "worker", "worker_private", "tree"), 0)
    cpu: dict[int, float] = {}
    log_path = out_dir / "command.log"
    with open(log_path, "wb") as logf:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=out_dir)
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            update_peaks(peak, tree_memory(root), proc.pid)
            for p in [root, *_children(root)]:
                try:
                    t = p.cpu_times()
                    cpu[p.pid] = t.user + t.system
                except psutil.Error:
                    pass
            time.sleep(SAMPLE_S)
        wall = time.perf_counter() - start
    output = log_path.read_text(encoding="utf-8", errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{output[-3000:]}")
    manifest = json.loads((out_dir / "data.manifest.json").read_text())
    for shard in out_dir.glob("data-*.tfrecord.gz"):
        shard.unlink()  # only the figures matter; 50 MB of corpus makes ~400 MB of records
    found = FINISHED.findall(output)
    return {"wall": wall, "pipeline": float(found[-1]) if found else float("nan"),
            "cpu_sampled": sum(cpu.values()), "peak": peak,
            "instances": manifest["summary"]["instances"], "manifest": manifest}


def _children(root: psutil.Process) -> list[psutil.Process]:
    try:
        return root.children(recursive=True)
    except psutil.Error:
        return []


def stream_worker(corpus_dir: str, out_dir: str) -> None:
    """The job's DoFns as a streaming worker runs them, outside the local runner.

    Read + tokenize element by element; the (pass, bucket) grouping goes through
    files on disk (Dataflow's shuffle service); then one bucket at a time through
    ``CreateInstancesFn``, its records sorted and written in chunks of 16 MB (what
    ``WriteShards`` does). Nothing else holds data. Prints the peak RSS.
    """
    from apache_beam.pvalue import TaggedOutput

    from pipelines import pretraining_data as ptd

    args = ptd.make_parser().parse_args(
        ["--input", f"{corpus_dir}/corpus-*.txt", "--vocab", str(VOCAB), "--output",
         f"{out_dir}/data", *FLAGS])
    config = ptd.config_from_args(args)
    reader = ptd.ReadDocumentsFn(config.max_line_bytes)
    tokenize, create = ptd.TokenizeFn(config), ptd.CreateInstancesFn(config)
    for fn in (reader, tokenize, create):
        fn.setup()
        fn.start_bundle()
    paths = sorted(str(p) for p in Path(corpus_dir).glob("corpus-*.txt"))
    num_docs = sum(1 for path in paths for e in reader.process(path)
                   if not isinstance(e, TaggedOutput))  # the job's CountDocuments
    spill = Path(out_dir) / "shuffle"
    spill.mkdir()
    files = {}
    docs = 0
    for path in paths:
        for element in reader.process(path):
            if isinstance(element, TaggedOutput):
                continue
            for key, sentences in tokenize.process(element):
                docs += 1
                for (dupe, bucket), value in ptd.assign_buckets(
                        (key, sentences), num_docs, config):
                    name = (dupe, bucket)
                    if name not in files:
                        files[name] = open(spill / f"{dupe}-{bucket}", "wb")
                    pickle.dump(value, files[name])
    for f in files.values():
        f.close()
    chunk, size, chunks, instances = [], 0, 0, 0
    for name in sorted(files):
        members = []
        with open(spill / f"{name[0]}-{name[1]}", "rb") as f:
            while True:
                try:
                    members.append(pickle.load(f))
                except EOFError:
                    break
        (spill / f"{name[0]}-{name[1]}").unlink()
        for batch in create.process((name, members)):
            for record in batch:
                chunk.append(record)
                size += len(record[1])
                instances += 1
                if size >= config.chunk_bytes:
                    _write_chunk(chunk, Path(out_dir) / "chunk")
                    chunk, size, chunks = [], 0, chunks + 1
    _write_chunk(chunk, Path(out_dir) / "chunk")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"documents": docs, "instances": instances, "chunks": chunks + 1,
                      "buckets": len(files), "peak_rss": peak}))


def _write_chunk(chunk: list, path: Path) -> None:
    with open(path, "wb") as f:
        for record in sorted(chunk):
            f.write(record[1])
    path.unlink()  # only the memory matters here


def run_stream_worker(corpus: Path, out_dir: Path) -> dict:
    out_dir.mkdir(parents=True)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--stream-worker", str(corpus),
                          str(out_dir)], capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(f"stream worker exited {out.returncode}:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - start
    return result


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.stream_worker:
        stream_worker(*args.stream_worker)
        return
    tmp = Path(tempfile.mkdtemp(prefix="bertjp-ptd-bench-"))
    log(f"working in {tmp}; {os.cpu_count()} CPUs; sizes {args.sizes} MB")
    docs = base_documents()
    results = {}
    try:
        for mb in args.sizes:
            spec = write_corpus(docs, mb, tmp / f"corpus-{mb:g}")
            log(f"corpus {mb:g} MB: {spec['bytes'] / MB:.1f} MB, {spec['documents']:,} documents "
                f"in {NUM_FILES} files")
            res = {"spec": spec}
            res["mecab"] = raw_mecab_rate(spec["dir"])
            log(f"  raw MeCab: {res['mecab']['rate']:.2f} MB/s over {res['mecab']['mb']:.1f} MB")
            for mode, flags in (
                    ("one", ["--direct_num_workers", "1"]),
                    ("mp1", ["--direct_running_mode", "multi_processing",
                             "--direct_num_workers", "1"]),
                    ("mp2", ["--direct_running_mode", "multi_processing",
                             "--direct_num_workers", "2"])):
                log(f"  pretraining-data {mb:g} MB, {' '.join(flags)} ...")
                r = run_command(spec["dir"], tmp / f"out-{mb:g}-{mode}", flags)
                log(f"    {r['instances']:,} instances; wall {r['wall']:.1f} s, pipeline "
                    f"{r['pipeline']:.1f} s, CPU {r['cpu_sampled']:.1f} s; peak RSS runner "
                    f"{r['peak']['runner'] / MB:.0f} MB, largest worker "
                    f"{r['peak']['worker'] / MB:.0f} MB")
                res[mode] = r
            log(f"  DoFns as a streaming worker, {mb:g} MB ...")
            res["stream"] = run_stream_worker(spec["dir"], tmp / f"stream-{mb:g}")
            s = res["stream"]
            log(f"    {s['instances']:,} instances from {s['buckets']} buckets, "
                f"{s['wall']:.1f} s; peak RSS {s['peak_rss'] / MB:.0f} MB")
            results[mb] = res
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report(results)


def report(results: dict) -> None:
    ref = REFERENCE["rate_per_core"]
    print("\n== results ==")
    print("same flags everywhere: seq 128, 19 predictions, dupe 5, wordpiece (v3 vocab), "
          "whole-word masking")
    print(f"reference create_pretraining_data.py (the issue's measurement): {ref:,.0f} "
          "instances/s on one core; peak RSS 777 MiB at 5 MB, 2.59 GiB at 50 MB")
    print("\nthroughput (instances/s)                         "
          + "".join(f"{mb:>10g} MB" for mb in results))
    rows = [
        ("one worker, per second of wall time", lambda r: r["one"]["instances"] / r["one"]["wall"]),
        ("one worker, per CPU-second (per core)",
         lambda r: r["one"]["instances"] / r["one"]["cpu_sampled"]),
        ("  x the reference per core", lambda r: r["one"]["instances"]
         / r["one"]["cpu_sampled"] / ref),
        ("one worker, pipeline time only (no imports)",
         lambda r: r["one"]["instances"] / r["one"]["pipeline"]),
        ("our DoFns alone, as a streaming worker (wall)",
         lambda r: r["stream"]["instances"] / r["stream"]["wall"]),
        ("multi_processing, 1 worker (wall)", lambda r: r["mp1"]["instances"] / r["mp1"]["wall"]),
        ("multi_processing, 2 workers (wall)", lambda r: r["mp2"]["instances"] / r["mp2"]["wall"]),
        ("  2 workers / 1 worker", lambda r: r["mp1"]["wall"] / r["mp2"]["wall"]),
        ("  2 workers / 1 worker, pipeline time", lambda r: r["mp1"]["pipeline"]
         / r["mp2"]["pipeline"]),
        ("raw MeCab (MB/s), same text", lambda r: r["mecab"]["rate"]),
        ("  raw MeCab's time for the corpus / one worker's", lambda r: r["spec"]["bytes"] / MB
         / r["mecab"]["rate"] / r["one"]["wall"]),
    ]
    for label, fn in rows:
        cells = []
        for r in results.values():
            v = fn(r)
            cells.append(f"{v:>13.2f}" if v < 100 else f"{v:>13,.0f}")
        print(f"{label:<49}" + "".join(cells))
    print("\npeak RSS (MB)                                    "
          + "".join(f"{mb:>10g} MB" for mb in results))
    mem_rows = [
        ("our DoFns as a streaming worker", lambda r: r["stream"]["peak_rss"]),
        ("local runner, one process (in-memory)", lambda r: r["one"]["peak"]["runner"]),
        ("multi_processing 1: runner (local shuffle)", lambda r: r["mp1"]["peak"]["runner"]),
        ("multi_processing 1: largest SDK worker", lambda r: r["mp1"]["peak"]["worker"]),
        ("multi_processing 2: largest SDK worker", lambda r: r["mp2"]["peak"]["worker"]),
        ("reference (the issue's measurement)",
         lambda r: REFERENCE["rss"].get(round(r["spec"]["bytes"] / MB), float("nan"))),
    ]
    for label, fn in mem_rows:
        print(f"{label:<49}" + "".join(f"{fn(r) / MB:>13,.0f}" for r in results.values()))
    sizes = list(results)
    if len(sizes) > 1:
        a, b = results[sizes[0]], results[sizes[-1]]
        print(f"\nstreaming worker {sizes[-1]:g} MB / {sizes[0]:g} MB peak RSS: "
              f"x{b['stream']['peak_rss'] / a['stream']['peak_rss']:.2f} "
              f"(input x{b['spec']['bytes'] / a['spec']['bytes']:.1f}); instances "
              + ", ".join(f"{r['one']['instances']:,}" for r in results.values()))


if __name__ == "__main__":
    main()
