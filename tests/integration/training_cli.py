"""The training commands as one CLI app, the committed fixtures, and options that train a small head fast."""

from __future__ import annotations

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
