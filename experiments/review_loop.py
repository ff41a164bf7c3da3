"""The labelling loop, measured on dev_BR: uploads through a real worker, review copies exported, labelled, used.

dev_BR's videos go through a worker (local Tansu broker, Redis, the starter head) with the review
topic on, `WORKER_REVIEW_SAMPLE_RATE` = --rate and `WORKER_LOW_CONFIDENCE` at its default. Both
reasons are exported with `export-review`'s code, then "labelled" with dev_BR's gold categories (what
a labeller would add), and used as the docs say:
1. The sample is a fair test set: the starter's accuracy on it should match its accuracy on all of
   dev_BR within the sample's interval. The low-confidence copies should be the hard ones.
2. Few-shot: the starter recipe retrained with the labelled low-confidence copies as
   `--few-shot-data` (all of them), against the same number of random dev_BR videos labelled instead,
   both scored with `compare` on the dev_BR videos neither saw.

    .venv/bin/python experiments/review_loop.py [--rate 0.1] [--work /tmp/review-loop]

Prints one JSON object. Needs ../shared (or SHARED_DATA_DIR) and Redis at REDIS_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from worker.app import build_worker  # noqa: E402
from worker.localbroker import LocalBroker  # noqa: E402
from worker.logs import configure_logging  # noqa: E402
from worker.readback import read_records  # noqa: E402
from worker.records import VideoUploaded  # noqa: E402
from worker.review import LOW_CONFIDENCE, SAMPLE  # noqa: E402
from worker.review_export import export_review  # noqa: E402
from worker.sample import produce_uploads  # noqa: E402
from worker.settings import Settings  # noqa: E402
from worker.topics import ensure_topics, worker_topics  # noqa: E402
from worker.training.metrics import accuracy_interval  # noqa: E402

SHARED = Path(os.environ.get("SHARED_DATA_DIR", REPO.parent / "shared" / "data")) / "youtube"
STARTER_RECIPE = ["--text-max-chars", "1024", "--max-tokens", "256", "--views", "title_tags", "--embed-views",
                  "title_tags", "--linear-weight", "1", "--label-prior", "7", "--refit"]


def categorize_through_a_worker(rows: list[dict[str, Any]], rate: float, work: Path) -> dict[str, Path]:
    """Every row as an upload through one worker; each review reason exported to work/<reason>.jsonl."""
    run = uuid.uuid4().hex[:8]
    with LocalBroker() as broker:
        settings = Settings(kafka_bootstrap_servers=broker.bootstrap, kafka_session_timeout_ms=6000,
                            redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
                            worker_input_topic=f"in-{run}", worker_output_topic=f"out-{run}",
                            worker_dlq_topic=f"dlq-{run}", worker_review_topic=f"review-{run}",
                            worker_group_id=f"loop-{run}", worker_review_sample_rate=rate, worker_metrics_port=0,
                            worker_log_level="warning")
        ensure_topics(settings, worker_topics(settings))
        produce_uploads(settings, [VideoUploaded(video_id=r["video_id"], title=r["title"], tags=tuple(r["tags"]),
                                                 description=r["description"], language=None, channel_id=None,
                                                 uploaded_at_ms=0) for r in rows])
        with build_worker(settings) as worker:
            thread = threading.Thread(target=worker.run, daemon=True)
            thread.start()
            for _ in read_records(settings, settings.worker_output_topic, "VideoCategorized", idle_timeout_s=300,
                                  until=lambda seen: len({o["video_id"] for o in seen}) >= len(rows)):
                pass
            worker.request_stop()
            thread.join(60)
        return {reason: _exported(settings, reason, work / f"{reason}.jsonl") for reason in (SAMPLE, LOW_CONFIDENCE)}


def _exported(settings: Settings, reason: str, out: Path) -> Path:
    out.unlink(missing_ok=True)
    export_review(settings, reason, out)
    return out


def labelled(exported: Path, gold: dict[str, str], group: str, out: Path) -> list[str]:
    """The exported lines with the gold category (what a labeller adds), all reported as `group`."""
    lines = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    out.write_text("".join(json.dumps({**line, "category": gold[line["video_id"]], "region": group}) + "\n"
                           for line in lines), encoding="utf-8")
    return [line["video_id"] for line in lines]


def as_lines(rows: list[dict[str, Any]], group: str, out: Path) -> Path:
    out.write_text("".join(json.dumps({**r, "region": group}) + "\n" for r in rows), encoding="utf-8")
    return out


def worker_cli(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "worker", *args], cwd=REPO, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/review-loop"))
    args = parser.parse_args()
    configure_logging("console", "warning")
    args.work.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in (SHARED / "dev_BR.jsonl").read_text(encoding="utf-8").splitlines()]
    gold = {r["video_id"]: r["category"] for r in rows}
    exported = categorize_through_a_worker(rows, args.rate, args.work)

    sample_ids = labelled(exported[SAMPLE], gold, "sample", args.work / "sample-labelled.jsonl")
    low_ids = labelled(exported[LOW_CONFIDENCE], gold, "low-confidence", args.work / "low-labelled.jsonl")
    everything = as_lines(rows, "all", args.work / "all.jsonl")
    scores = worker_cli("evaluate", "--model", "models/starter", "--json", "--data", str(everything),
                        str(args.work / "sample-labelled.jsonl"), str(args.work / "low-labelled.jsonl"))["groups"]
    fair = {name: {**g, "accuracy_95": [round(b, 3) for b in accuracy_interval(g["accuracy"], g["n"])]}
            for name, g in scores.items()}

    taken = set(sample_ids) | set(low_ids)
    random_ids = random.Random(13).sample(sorted(set(gold) - taken), len(low_ids))
    as_lines([r for r in rows if r["video_id"] in set(random_ids)], "random", args.work / "random-labelled.jsonl")
    held_out = as_lines([r for r in rows if r["video_id"] not in set(low_ids) | set(random_ids)], "BR-held-out",
                        args.work / "held-out.jsonl")
    train = ["train", "--data", str(SHARED / "train.jsonl"), *STARTER_RECIPE, "--few-shot", "1000"]
    for name in ("low", "random"):
        subprocess.run([sys.executable, "-m", "worker", *train, "--out", str(args.work / f"head-{name}"),
                        "--few-shot-data", str(args.work / f"{name}-labelled.jsonl")], cwd=REPO, check=True,
                       capture_output=True)
    comparisons = {
        f"{candidate} vs {baseline}": worker_cli("compare", "--json", "--model", candidate_dir, "--baseline",
                                                 baseline_dir, "--data", str(held_out))["groups"]["BR-held-out"]
        for candidate, baseline, candidate_dir, baseline_dir in (
            ("low", "starter", str(args.work / "head-low"), "models/starter"),
            ("random", "starter", str(args.work / "head-random"), "models/starter"),
            ("low", "random", str(args.work / "head-low"), str(args.work / "head-random")),
        )
    }
    print(json.dumps({"uploads": len(rows), "rate": args.rate, "sampled": len(sample_ids),
                      "low_confidence": len(low_ids), "evaluate": fair, "few_shot_rows": len(low_ids),
                      "compare_on_held_out": comparisons}, indent=1))


if __name__ == "__main__":
    main()
