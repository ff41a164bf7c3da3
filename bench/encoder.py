"""Throughput (texts/s) and peak RSS of the TF SavedModel encoder and the numpy reference.

Both encoders embed the same texts in the same run, each in its own child process so the
peak RSS of one is not inflated by the other. Texts: real video metadata built with
`worker.text.build_text` (title, tags, description, up to 512 chars) from the shared YouTube
data when present, else the multilingual test sentences joined into ~512-char texts.
Each batch size is timed twice over the same texts and the faster pass is kept (the first
pass also pays XLA compilation of new token-count buckets).

    .venv/bin/python bench/encoder.py [--texts 1024] [--max-tokens 128] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

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


def measure(kind: str, texts: list[str], max_tokens: int, queue: mp.Queue) -> None:
    """Child process: load one encoder, time it at every batch size, report through queue."""
    start = time.perf_counter()
    if kind == "tf":
        from worker.encoders.tf_hub import TFHubEncoder
        from worker.settings import DEFAULT_SAVEDMODEL_DIR

        encoder = TFHubEncoder(str(DEFAULT_SAVEDMODEL_DIR), max_tokens=max_tokens)
    else:
        from worker.encoders.reference import ReferenceEncoder

        encoder = ReferenceEncoder(max_tokens=max_tokens)
    load_s = time.perf_counter() - start
    rates: dict[int, float] = {}
    for batch_size in BATCH_SIZES:
        n = len(texts) if batch_size >= 8 else min(len(texts), 256)
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            for i in range(0, n, batch_size):
                encoder.encode(texts[i : i + batch_size])
            best = min(best, time.perf_counter() - start)
        rates[batch_size] = n / best
    queue.put({"encoder": kind, "load_s": load_s, "texts_per_s": rates, "peak_rss_mib": peak_rss_mib()})


def run_child(kind: str, texts: list[str], max_tokens: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=measure, args=(kind, texts, max_tokens, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def table(results: list[dict]) -> str:
    header = "| encoder | " + " | ".join(f"bs={b}" for b in BATCH_SIZES) + " | peak RSS MiB | load s |"
    lines = [header, "|" + "---|" * (len(BATCH_SIZES) + 3)]
    for r in results:
        rates = " | ".join(f"{r['texts_per_s'][b]:.0f}" for b in BATCH_SIZES)
        lines.append(f"| {r['encoder']} | {rates} | {r['peak_rss_mib']:.0f} | {r['load_s']:.1f} |")
    tf, ref = results
    ratio = " | ".join(f"{tf['texts_per_s'][b] / ref['texts_per_s'][b]:.2f}x" for b in BATCH_SIZES)
    lines.append(f"| tf / reference | {ratio} | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1024, help="texts per batch-size pass")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--encoders", default="tf,reference")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    texts, source = load_texts(args.texts)
    results = [run_child(kind, texts, args.max_tokens) for kind in args.encoders.split(",")]
    print(f"texts: {len(texts)} from {source}; max_tokens={args.max_tokens}; cpu cores: {os.cpu_count()}")
    print(table(results) if len(results) == 2 else json.dumps(results, indent=1))
    if args.json_out:
        args.json_out.write_text(json.dumps({"source": source, "max_tokens": args.max_tokens, "results": results}))


if __name__ == "__main__":
    main()
