"""The one command line: `python -m worker <command>`; `--help` lists them."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Annotated

import structlog
import typer

from worker.encoders.commands import embed, export_muse
from worker.logs import configure_logging
from worker.settings import Settings, load_settings
from worker.training.commands import compare, evaluate, train

log = structlog.get_logger(__name__)
app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.callback()
def configure() -> None:
    # Every command logs as the settings say (WORKER_LOG_FORMAT / WORKER_LOG_LEVEL); structlog's
    # unconfigured default would print debug events too.
    settings = load_settings()
    configure_logging(settings.worker_log_format, settings.worker_log_level)


def settings_with_broker() -> Settings:
    """The environment's settings, for a command that talks to Kafka."""
    settings = load_settings()
    if not settings.kafka_bootstrap_servers:
        raise typer.BadParameter("KAFKA_BOOTSTRAP_SERVERS is not set")
    return settings


@app.command("run")
def run() -> None:
    """Run one worker from the environment's settings until SIGTERM/SIGINT (what a container runs)."""
    from worker.app import build_worker
    from worker.avro import SchemaNotRegistered

    settings = settings_with_broker()
    # Until the worker is built nothing is consumed, so a stop exits at once. In a container the worker
    # is PID 1, which the kernel spares a signal it has no handler for: without this, a pod stopped while
    # it loads its models would wait out its whole termination grace period.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_at_once)
    try:
        with build_worker(settings) as worker:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: worker.request_stop())
            worker.run()
    except SchemaNotRegistered as error:  # a deployment step is missing: say which, no traceback
        log.error("output_schema_not_registered", error=str(error))
        raise SystemExit(1) from None


def _exit_at_once(signum: int, _frame: object) -> None:
    log.info("stopped_during_startup", signal=signal.Signals(signum).name)
    raise SystemExit(128 + signum)


@app.command("produce-sample")
def produce_sample(count: Annotated[int, typer.Option(help="How many uploads (cycling languages).")] = 20) -> None:
    """Send sample multilingual uploads to the input topic."""
    from worker.sample import produce_uploads, sample_uploads
    from worker.topics import ensure_topics, worker_topics

    settings = settings_with_broker()
    ensure_topics(settings, worker_topics(settings))
    typer.echo(f"produced {produce_uploads(settings, sample_uploads(count))} uploads")


@app.command("demo")
def demo(timeout: Annotated[float, typer.Option(help="Seconds to wait for outputs.")] = 180.0) -> None:
    """Everything `make run` does: local broker, Redis, topics, sample uploads, a worker, printed results."""
    from worker.demo import run_demo

    settings = load_settings(worker_log_format="console")
    configure_logging("console", settings.worker_log_level)
    raise typer.Exit(run_demo(settings, timeout))


@app.command("predict")
def predict(
    model: Annotated[
        Path | None, typer.Option(exists=True, file_okay=False, help="Model directory (default: WORKER_MODEL_DIR).")
    ] = None,
    input: Annotated[
        str | None, typer.Option("--input", help="JSON Lines of uploads (title, tags, description, ...); - for stdin.")
    ] = None,
    title: Annotated[str | None, typer.Option(help="One upload's title (instead of --input).")] = None,
    tags: Annotated[str, typer.Option(help="Its tags, comma-separated.")] = "",
    description: Annotated[str, typer.Option(help="Its description.")] = "",
) -> None:
    """Categorize uploads as the worker would, without Kafka or Redis: one JSON answer per upload, with the
    text the head saw and every label's score beside its threshold."""
    from worker.predict import load_predictor, predict_rows
    from worker.training.data import json_objects, text_lines
    from worker.training.options import user_errors

    if (input is None) == (title is None):
        raise typer.BadParameter("give --input FILE (JSON Lines, - for stdin) or --title")
    if title is not None:
        rows: Iterable[dict] = [{"title": title, "tags": [t.strip() for t in tags.split(",") if t.strip()],
                                 "description": description}]
    else:
        if input != "-" and not Path(input).is_file():
            raise typer.BadParameter(f"{input}: no such file", param_hint="--input")
        rows = json_objects(sys.stdin if input == "-" else text_lines(Path(input)), input)
    settings = load_settings()
    with user_errors():  # a missing file, a line that is not JSON, a head for another encoder
        predictor = load_predictor(model or settings.worker_model_dir, settings)
        for answer in predict_rows(rows, predictor):
            typer.echo(json.dumps(answer, ensure_ascii=False))


@app.command("replay-dead-letters")
def replay_dead_letters(
    error_type: Annotated[
        list[str] | None, typer.Option("--error-type", help="Replay the letters of this reason; repeatable.")
    ] = None,
    all_reasons: Annotated[bool, typer.Option("--all", help="Replay the letters of every reason.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be replayed; send nothing.")] = False,
) -> None:
    """Send dead letters back to their source topic once their cause is mended (docs/reliability.md)."""
    from worker.decode import DEAD_LETTER_REASONS
    from worker.replay import replay_dead_letters as replay

    if bool(error_type) == all_reasons:
        raise typer.BadParameter("give --error-type REASON (repeatable) or --all")
    if unknown := sorted(set(error_type or ()) - set(DEAD_LETTER_REASONS)):
        raise typer.BadParameter(f"unknown reason {unknown}; the reasons are {', '.join(DEAD_LETTER_REASONS)}")
    settings = settings_with_broker()
    summary = replay(settings, DEAD_LETTER_REASONS if all_reasons else tuple(dict.fromkeys(error_type or ())), dry_run)
    typer.echo(json.dumps(summary.as_json()))


@app.command("backfill-embeddings")
def backfill_embeddings(
    since: Annotated[str, typer.Option(help="Window start, ISO 8601 with a time zone: 2026-11-22T09:30:00Z.")],
    until: Annotated[
        str | None, typer.Option(help="Window end (excluded), ISO 8601 with a time zone; default: now.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count the missing keys; embed and write nothing.")
    ] = False,
) -> None:
    """Embed the uploads of a time window whose video key is missing in Redis (after a Redis outage)."""
    from worker.backfill import BackfillFailed, run_backfill

    since_ms = epoch_ms(since, "--since")
    until_ms = epoch_ms(until, "--until") if until else int(time.time() * 1000)
    if since_ms >= until_ms:
        raise typer.BadParameter(f"--since {since} is not before --until {until or 'now'}")
    try:
        summary = run_backfill(settings_with_broker(), since_ms, until_ms, dry_run)
    except BackfillFailed as error:
        log.error("backfill_failed", error=str(error))
        raise SystemExit(1) from None
    typer.echo(json.dumps(summary.as_dict()))


def epoch_ms(text: str, option: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{option} {text!r} is not an ISO 8601 time, e.g. 2026-11-22T09:30:00Z") from None
    if moment.tzinfo is None:
        raise typer.BadParameter(f"{option} {text!r} has no time zone: add Z (UTC) or +HH:MM")
    return int(moment.timestamp() * 1000)


@app.command("export-review")
def export_review(
    reason: Annotated[str, typer.Option(help="sample (a fair test set) or low-confidence (few-shot material).")],
    out: Annotated[Path, typer.Option(help="New JSON Lines file to write; refused if it exists.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be exported; write nothing.")] = False,
) -> None:
    """Write the review topic's copies of one reason to JSON Lines for labelling (docs/training.md)."""
    from worker.review import REVIEW_REASONS
    from worker.review_export import ExportRefused
    from worker.review_export import export_review as export

    if reason not in REVIEW_REASONS:
        raise typer.BadParameter(f"unknown reason {reason!r}; the reasons are {', '.join(REVIEW_REASONS)}")
    settings = settings_with_broker()
    try:
        summary = export(settings, reason, out, dry_run)
    except ExportRefused as refused:
        raise typer.BadParameter(str(refused)) from None
    typer.echo(json.dumps(summary.as_json()))


app.command("export-muse")(export_muse)
app.command("embed")(embed)
app.command("train")(train)
app.command("evaluate")(evaluate)
app.command("compare")(compare)
