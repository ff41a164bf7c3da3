"""Throughput (texts/s) and peak RSS of the TF SavedModel encoder and the numpy reference.

Both encoders embed the same texts in the same run, each in its own child process so the
peak RSS of one is not inflated by the other. Texts: real video metadata built with
`worker.text.build_text` (title, tags, description, up to 512 chars) from the shared YouTube
data when present, else the multilingual test sentences joined into ~512-char texts.
The encoders are timed interleaved (one pass of each in turn, one process computing at a
time), twice per batch size, keeping each one's faster pass: on a shared machine a change
of load then hits every encoder alike.

    .venv/bin/python bench/encoder.py [--texts 1024] [--encoders tf,reference] [--json-out FILE]
    .venv/bin/python bench/encoder.py --encoders tf@64,tf@128,tf@256     # token budgets

`--budget-accuracy 64,128,256` instead measures what the token budget costs or gains: a
tiny numpy logistic regression on TF embeddings, trained on the training languages only
(SIB-200 eng+fra train; YouTube train) and scored zero-shot on the dev sets (SIB-200
deu/spa/jpn/arb dev; YouTube dev_BR), with the encoding throughput at each budget.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BATCH_SIZES = (1, 8, 32, 128, 512)
FIXTURE = REPO / "tests" / "fixtures" / "muse_sentences.txt"


def shared_data_dir() -> Path | None:
    candidates = [os.environ.get("SHARED_DATA_DIR", ""), str(REPO.parent / "shared" / "data")]
    return next((Path(c) for c in candidates if c and Path(c).is_dir()), None)


def load_texts(n: int) -> tuple[list[str], str]:
    from worker.text import build_text

    data = shared_data_dir()
    if data and (data / "youtube" / "train.jsonl").is_file():
        texts = []
        with (data / "youtube" / "train.jsonl").open() as f:
            for line in f:
                row = json.loads(line)
                texts.append(build_text(row["title"], row["tags"], row["description"]))
        source = "youtube train (build_text, <=512 chars)"
    else:
        sentences = [s for s in FIXTURE.read_text().splitlines() if s.strip()]
        texts, current = [], ""
        for sentence in sentences * 4:
            current = f"{current} {sentence}".strip()
            if len(current) > 400:
                texts.append(current[:512])
                current = ""
        source = "fixture sentences joined to ~512 chars"
    return (texts * (n // max(len(texts), 1) + 1))[:n], source


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve(spec: str, texts: list[str], conn: Connection) -> None:
    """Child process: load one encoder, then time one pass per requested batch size."""
    kind, _, budget = spec.partition("@")
    max_tokens = int(budget or 128)
    start = time.perf_counter()
    if kind == "tf":
        from worker.encoders.tf_hub import TFHubEncoder
        from worker.settings import DEFAULT_SAVEDMODEL_DIR

        encoder = TFHubEncoder(str(DEFAULT_SAVEDMODEL_DIR), max_tokens=max_tokens)
    else:
        from worker.encoders.reference import ReferenceEncoder

        encoder = ReferenceEncoder(max_tokens=max_tokens)
    conn.send(time.perf_counter() - start)
    while (batch_size := conn.recv()) is not None:
        n = passage_size(batch_size, len(texts))
        start = time.perf_counter()
        for i in range(0, n, batch_size):
            encoder.encode(texts[i : i + batch_size])
        conn.send(time.perf_counter() - start)
    conn.send(peak_rss_mib())


def passage_size(batch_size: int, n_texts: int) -> int:
    return n_texts if batch_size >= 8 else min(n_texts, 256)


def compare(specs: list[str], texts: list[str], repeats: int = 2) -> list[dict]:
    """Time every encoder on the same texts, interleaved, so a change in machine load hits all."""
    ctx = mp.get_context("spawn")
    conns, children, results = [], [], []
    for spec in specs:
        parent, child_end = ctx.Pipe()
        child = ctx.Process(target=serve, args=(spec, texts, child_end))
        child.start()
        results.append({"encoder": spec, "load_s": parent.recv(), "texts_per_s": {}})
        conns.append(parent)
        children.append(child)
    for batch_size in BATCH_SIZES:
        best = [float("inf")] * len(specs)
        for _ in range(repeats):
            for k, conn in enumerate(conns):
                conn.send(batch_size)
                best[k] = min(best[k], conn.recv())
        for result, seconds in zip(results, best, strict=True):
            result["texts_per_s"][batch_size] = passage_size(batch_size, len(texts)) / seconds
    for result, conn, child in zip(results, conns, children, strict=True):
        conn.send(None)
        result["peak_rss_mib"] = conn.recv()
        child.join()
    return results


def table(results: list[dict]) -> str:
    header = "| encoder | " + " | ".join(f"bs={b}" for b in BATCH_SIZES) + " | peak RSS MiB | load s |"
    lines = [header, "|" + "---|" * (len(BATCH_SIZES) + 3)]
    for r in results:
        rates = " | ".join(f"{r['texts_per_s'][b]:.0f}" for b in BATCH_SIZES)
        lines.append(f"| {r['encoder']} | {rates} | {r['peak_rss_mib']:.0f} | {r['load_s']:.1f} |")
    by_name = {r["encoder"]: r for r in results}
    if "tf" in by_name and "reference" in by_name:
        tf, ref = by_name["tf"]["texts_per_s"], by_name["reference"]["texts_per_s"]
        ratio = " | ".join(f"{tf[b] / ref[b]:.2f}x" for b in BATCH_SIZES)
        lines.append(f"| tf / reference | {ratio} | | |")
    return "\n".join(lines)


def read_sib(data: Path, lang: str, split: str) -> tuple[list[str], list[str]]:
    import csv

    with (data / "sib200" / lang / f"{split}.tsv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def read_youtube(data: Path, name: str) -> tuple[list[str], list[str]]:
    from worker.text import build_text

    with (data / "youtube" / name).open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [build_text(r["title"], r["tags"], r["description"]) for r in rows], [r["category"] for r in rows]


def fit_softmax(
    x: np.ndarray, y: np.ndarray, n_classes: int, l2: float = 1e-3, steps: int = 500, lr: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by full-batch gradient descent (x: unit-norm embeddings)."""
    w, b = np.zeros((x.shape[1], n_classes), np.float32), np.zeros(n_classes, np.float32)
    onehot = np.eye(n_classes, dtype=np.float32)[y]
    for _ in range(steps):
        logits = x @ w + b
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        grad = (p - onehot) / len(x)
        w -= lr * (x.T @ grad + l2 * w)
        b -= lr * grad.sum(0)
    return w, b


def scores(pred: np.ndarray, gold: np.ndarray) -> tuple[float, float]:
    """Top-1 accuracy and macro-F1 over the classes present in gold."""
    f1s = []
    for c in np.unique(gold):
        tp = np.sum((pred == c) & (gold == c))
        f1s.append(2 * tp / max(np.sum(pred == c) + np.sum(gold == c), 1))
    return float(np.mean(pred == gold)), float(np.mean(f1s))


def budget_accuracy(budgets: list[int]) -> list[dict]:
    from worker.encoders.tf_hub import TFHubEncoder
    from worker.settings import DEFAULT_SAVEDMODEL_DIR

    data = shared_data_dir()
    if data is None:
        raise SystemExit("needs the shared data (../shared/data or SHARED_DATA_DIR)")
    tasks = {
        "sib200": (
            [read_sib(data, lang, "train") for lang in ("eng_Latn", "fra_Latn")],
            {lang: read_sib(data, lang, "dev") for lang in ("deu_Latn", "spa_Latn", "jpn_Jpan", "arb_Arab")},
        ),
        "youtube": ([read_youtube(data, "train.jsonl")], {"dev_BR": read_youtube(data, "dev_BR.jsonl")}),
    }
    results = []
    for budget in budgets:
        encoder = TFHubEncoder(str(DEFAULT_SAVEDMODEL_DIR), max_tokens=budget)
        for task, (train_parts, dev_sets) in tasks.items():
            train_texts = [t for texts, _ in train_parts for t in texts]
            train_labels = [label for _, labels in train_parts for label in labels]
            classes = sorted(set(train_labels))
            start = time.perf_counter()
            x = encoder.encode(train_texts)
            rate = len(train_texts) / (time.perf_counter() - start)
            w, b = fit_softmax(x, np.array([classes.index(c) for c in train_labels]), len(classes))
            for name, (texts, labels) in dev_sets.items():
                gold = np.array([classes.index(c) if c in classes else -1 for c in labels])
                acc, f1 = scores(np.argmax(encoder.encode(texts) @ w + b, 1), gold)
                majority = float(np.mean(gold == np.bincount(gold[gold >= 0]).argmax()))
                results.append(
                    {
                        "budget": budget,
                        "task": task,
                        "dev": name,
                        "accuracy": acc,
                        "macro_f1": f1,
                        "majority": majority,
                        "train_texts_per_s": rate,
                    }
                )
                print(
                    f"budget {budget:4d} {task:8s} {name:9s} acc {acc:.3f} macro-F1 {f1:.3f} "
                    f"(majority {majority:.3f}); encode {rate:.0f} texts/s",
                    flush=True,
                )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1024, help="texts per batch-size pass")
    parser.add_argument(
        "--encoders",
        default="tf,reference",
        help="comma-separated tf|reference[@max_tokens], default budget 128",
    )
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--budget-accuracy", help="comma-separated token budgets, e.g. 64,128,256")
    args = parser.parse_args()
    if args.budget_accuracy:
        results = budget_accuracy([int(b) for b in args.budget_accuracy.split(",")])
        if args.json_out:
            args.json_out.write_text(json.dumps(results))
        return
    texts, source = load_texts(args.texts)
    results = compare(args.encoders.split(","), texts)
    print(f"texts: {len(texts)} from {source}; cpu cores: {os.cpu_count()}")
    print(table(results))
    if args.json_out:
        args.json_out.write_text(json.dumps({"source": source, "results": results}))


if __name__ == "__main__":
    main()
