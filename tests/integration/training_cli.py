"""The training commands as one CLI app, the committed fixtures, and options that train a small head fast."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from worker.training.commands import compare, evaluate, train

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FAST = ["--encoder", "reference", "--seeds", "1", "--max-epochs", "60", "--patience", "15", "--hidden", "32"]


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("compare")(compare)
    return app


def region_rows(folder: Path, region: str = "US") -> Path:
    """The fixture's videos of one region: the US ones train heads that the whole fixture then
    evaluates, with FR and BR unseen."""
    path = folder / f"{region}.jsonl"
    lines = (FIXTURES / "videos_small.jsonl").read_text(encoding="utf-8").splitlines()
    path.write_text("".join(f"{line}\n" for line in lines if json.loads(line)["region"] == region), encoding="utf-8")
    return path
