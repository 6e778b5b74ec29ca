"""Fine-tuning throughput and peak memory per JGLUE task, and a GPU projection of the grid.

For a BERT-Tiny-size (L2/H128) and a BERT-Base-size (L12/H768) model with the released
v3 WordPiece vocabulary (32,768), on CPU, per task: training examples/s of
``evaluation.finetune.train_epochs`` (the real loop: collate, forward, backward, clip,
AdamW, schedule) over a few steps after one warm-up step, on inputs built from the
JGLUE samples in ``tests/fixtures/jglue`` at JGLUE's max sequence lengths, and the
process's peak RSS (each measurement in its own process). MARC-ja is not distributed:
its inputs are the JSQuAD sample's paragraphs cut to 500 characters (MARC-ja drops
longer reviews), a stated stand-in.

Then the projected wall time of ``bertjp evaluate --grid`` (6 runs per task: lr
{5e-5, 3e-5, 2e-5} × epochs {3, 4}, i.e. 21 training epochs and 6 dev passes per task)
for a base model on one GPU: training FLOPs per example from the measured token counts
(batches padded to their longest input at JGLUE's batch size, on the samples), the
assumed GPU throughput below, JGLUE v1.3's split sizes, plus tokenization at the rate
measured here (it runs on the host CPU, once per task: the grid's runs reuse it).

    python bench/finetune_bench.py                 # both sizes, all tasks
    python bench/finetune_bench.py --sizes tiny --steps 3
"""

import argparse
import json
import os
import pathlib
import random
import resource
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

JGLUE = ROOT / "tests" / "fixtures" / "jglue"
VOCAB = ROOT / "tests" / "fixtures" / "reference" / "vocab" / "wordpiece_unidic_lite"
SAMPLES = {
    "jsts": "jsts-train-v1.3.head30.json",
    "jnli": "jnli-test-v1.3.head30.json",
    "jcommonsenseqa": "jcommonsenseqa-train-v1.3.head30.json",
    "jsquad": "jsquad-test-v1.3.first2articles.json",
}
SIZES = {  # layers, hidden, heads
    "tiny": (2, 128, 2),
    "base": (12, 768, 12),
}
TASKS = ("marc-ja", "jsts", "jnli", "jsquad", "jcommonsenseqa")
# JGLUE v1.3 sizes (train, dev), from JGLUE's README.
SPLIT_SIZES = {"marc-ja": (187528, 5654), "jsts": (12451, 1457), "jnli": (20073, 2434),
               "jsquad": (62697, 4442), "jcommonsenseqa": (8939, 1119)}
GRID_TRAIN_EPOCHS = 3 * (3 + 4)  # 3 learning rates x (3 + 4) epochs
GRID_RUNS = 6
# Assumed GPU throughput for fp32 training (the loop does not enable TF32 or mixed
# precision, as JGLUE's runs): an H100 SXM's FP32 peak is 67 TFLOP/s; BERT fine-tuning
# at these batch shapes reaches roughly 35-45 % of it.
GPU_NAME = "one H100 SXM, fp32"
GPU_TFLOPS = 25.0


def _examples(task):
    from evaluation import data as jglue_data

    if task == "marc-ja":
        from evaluation.data import SentenceExample

        qa = jglue_data.read_jsquad(JGLUE / SAMPLES["jsquad"])
        bodies = sorted({e.context.split(" [SEP] ", 1)[-1][:500] for e in qa})
        return [SentenceExample(f"m{i}", body, i % 2) for i, body in enumerate(bodies)]
    return jglue_data.read_examples(task, JGLUE / SAMPLES[task])


def _model(spec, size):
    import transformers

    from evaluation.tasks import TaskKind

    layers, hidden, heads = SIZES[size]
    config = transformers.BertConfig(vocab_size=32768, hidden_size=hidden,
                                     num_hidden_layers=layers, num_attention_heads=heads,
                                     intermediate_size=4 * hidden, max_position_embeddings=512)
    if spec.kind is TaskKind.QUESTION_ANSWERING:
        return transformers.BertForQuestionAnswering(config)
    if spec.kind is TaskKind.MULTIPLE_CHOICE:
        return transformers.BertForMultipleChoice(config)
    config.num_labels = spec.num_labels
    config.problem_type = ("regression" if spec.kind is TaskKind.REGRESSION
                           else "single_label_classification")
    return transformers.BertForSequenceClassification(config)


def _tokens(item):
    ids = item["input_ids"]
    return sum(len(r) for r in ids) if isinstance(ids[0], list) else len(ids)


def _padded_tokens(items, batch_size, trials=20):
    """Mean tokens per example once batches of ``batch_size`` are padded to their longest."""
    rng = random.Random(0)
    total = count = 0
    for _ in range(trials):
        batch = rng.sample(items, min(batch_size, len(items)))
        multiple = isinstance(batch[0]["input_ids"][0], list)
        width = max(len(r) for it in batch for r in (it["input_ids"] if multiple
                                                        else [it["input_ids"]]))
        per = width * (len(batch[0]["input_ids"]) if multiple else 1)
        total += per * len(batch)
        count += len(batch)
    return total / count


def child(size, task, batch_size, steps):
    """One measurement, printed as JSON (its own process, for the peak RSS)."""
    import torch

    from bertjp.tokenization import JapaneseTokenizer
    from evaluation import finetune as ft
    from evaluation.tasks import get_task

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    spec = get_task(task)
    tokenizer = JapaneseTokenizer(str(VOCAB / "vocab.txt"))
    examples = _examples(task)
    began = time.perf_counter()
    inputs = ft.build_inputs(spec, examples, tokenizer, spec.max_seq_length, True)
    tokenize_s = time.perf_counter() - began
    items = inputs.items
    while len(items) < batch_size * (steps + 1):
        items = items + items
    model = _model(spec, size)
    params = sum(p.numel() for p in model.parameters())
    embedding = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    kwargs = dict(batch_size=batch_size, learning_rate=3e-5, epochs=1, seed=0,
                  device=torch.device("cpu"), log=lambda _: None)
    ft.train_epochs(model, items, max_steps=1, **kwargs)  # warm-up
    began = time.perf_counter()
    ft.train_epochs(model, items, max_steps=steps, **kwargs)
    seconds = time.perf_counter() - began
    layers, hidden, _ = SIZES[size]
    print(json.dumps({
        "size": size, "task": task, "batch_size": batch_size, "steps": steps,
        "examples_per_s": steps * batch_size / seconds,
        "inputs_per_example": len(inputs.items) / len(examples),
        "tokens_per_input": sum(map(_tokens, inputs.items)) / len(inputs.items),
        "padded_tokens_per_input": _padded_tokens(inputs.items, spec.batch_size),
        "seq_per_input": spec.num_choices or 1,
        "tokenize_examples_per_s": len(examples) / tokenize_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "params": params, "nonembedding_params": params - embedding,
        "layers": layers, "hidden": hidden}))


def train_flops(m, tokens_per_input):
    """Training FLOPs of one input: 6 x non-embedding params x tokens + attention."""
    seqs = m["seq_per_input"]
    seq = tokens_per_input / seqs
    attention = 12 * m["layers"] * seq * seq * m["hidden"] * seqs
    return 6 * m["nonembedding_params"] * tokens_per_input + attention


def _measure(size, task, batch_size, steps):
    out = subprocess.run([sys.executable, __file__, "--child", size, task, str(batch_size),
                          str(steps)], check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def project(base):
    """Rows of the GPU projection of ``evaluate --grid`` from the base measurements."""
    rows, total = [], 0.0
    for m in base:
        train, dev = SPLIT_SIZES[m["task"]]
        inputs = m["inputs_per_example"]
        flops = train_flops(m, m["padded_tokens_per_input"])
        cpu_flops = train_flops(m, m["tokens_per_input"]) * m["examples_per_s"]
        train_s = GRID_TRAIN_EPOCHS * train * inputs * flops / (GPU_TFLOPS * 1e12)
        eval_s = GRID_RUNS * dev * inputs * flops / 3 / (GPU_TFLOPS * 1e12)
        tokenize_s = (train + dev) / m["tokenize_examples_per_s"]  # once: the grid reuses it
        seconds = train_s + eval_s + tokenize_s
        total += seconds
        rows.append((m["task"], m["padded_tokens_per_input"], cpu_flops / 1e9, train_s, eval_s,
                     tokenize_s, seconds))
    return rows, total


def _hms(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--steps", type=int, default=2, help="measured steps per task")
    parser.add_argument("--tiny-batch", type=int, default=32)
    parser.add_argument("--base-batch", type=int, default=2,
                        help="base batch on CPU (JGLUE's 32/64 take minutes per step here)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        size, task, batch, steps = args.child
        child(size, task, int(batch), int(steps))
        return 0
    import torch

    print(f"CPU: {os.cpu_count()} cores visible, torch {torch.__version__}, "
          f"{os.environ.get('BENCH_THREADS', '2')} threads; {args.steps} measured steps "
          "after 1 warm-up, fp32")
    print(f"{'size':5} {'task':15} {'batch':>5} {'ex/s':>8} {'tok/input':>9} "
          f"{'peak RSS MB':>11} {'params':>11}")
    results = []
    for size in args.sizes:
        batch = args.tiny_batch if size == "tiny" else args.base_batch
        for task in args.tasks:
            m = _measure(size, task, batch, args.steps)
            results.append(m)
            print(f"{size:5} {task:15} {batch:5d} {m['examples_per_s']:8.2f} "
                  f"{m['tokens_per_input']:9.1f} {m['peak_rss_mb']:11.0f} "
                  f"{m['params']:11,d}", flush=True)
    base = [m for m in results if m["size"] == "base"]
    if not base:
        return 0
    rows, total = project(base)
    print(f"\nProjected `bertjp evaluate --grid` for a base model on {GPU_NAME} "
          f"(assumed {GPU_TFLOPS:g} TFLOP/s achieved):")
    print("  per task: 21 training epochs (lr x epochs grid) + 6 dev passes (1/3 the FLOPs of "
          "training) on JGLUE v1.3's full splits; batches padded to their longest input at "
          "JGLUE's batch size (token counts from the samples); tokenization at this host's "
          "measured rate, once per task (the grid's runs reuse the inputs)")
    print(f"  {'task':15} {'padded tok':>10} {'CPU GFLOP/s':>11} {'train':>9} {'eval':>8} "
          f"{'tokenize':>9} {'total':>9}")
    for task, padded, cpu, train_s, eval_s, tok_s, seconds in rows:
        print(f"  {task:15} {padded:10.1f} {cpu:11.1f} {_hms(train_s):>9} {_hms(eval_s):>8} "
              f"{_hms(tok_s):>9} {_hms(seconds):>9}")
    print(f"  total {_hms(total)} (CPU-only at the measured base rates: "
          f"{_hms(total_cpu(base))})")
    print("  'CPU GFLOP/s' is the FLOP model applied to the measured CPU rate (its check: "
          "plausible for 2 cores); 'padded tok' is tokens per input at JGLUE's batch size.")
    print("  Assumptions: MARC-ja inputs are JSQuAD paragraphs cut to 500 characters (its "
          "reviews are not distributed); GPU rate is an assumption, not a measurement; "
          "model load/save and checkpoints are ignored.")
    return 0


def total_cpu(base):
    """Grid wall time on this CPU at the measured base rates (training and dev passes)."""
    seconds = 0.0
    for m in base:
        train, dev = SPLIT_SIZES[m["task"]]
        inputs = m["inputs_per_example"]
        seconds += (GRID_TRAIN_EPOCHS * train + GRID_RUNS * dev / 3) * inputs / m[
            "examples_per_s"]
    return seconds


if __name__ == "__main__":
    sys.exit(main())
