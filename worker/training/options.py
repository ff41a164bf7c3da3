"""What the training commands share: the data options, their parsing, and how a user error is reported."""

from __future__ import annotations

import contextlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from worker.settings import EncoderKind

DataOption = Annotated[
    list[Path],
    typer.Option("--data", exists=True, help="JSON Lines file or SIB-200 style folder; repeatable."),
]
# `--data A B C`: click options take one value each, so the paths after the first arrive as arguments.
MoreDataArgument = Annotated[
    list[Path] | None,
    typer.Argument(exists=True, show_default=False, help="More --data paths (`--data A B` = `--data A --data B`)."),
]
EncoderOption = Annotated[
    EncoderKind | None,
    typer.Option("--encoder", help="Encoder to embed with (default: WORKER_ENCODER, i.e. tf)."),
]
KeepFittedOption = Annotated[
    bool,
    typer.Option("--keep-fitted", help="Also score the rows whose ids the head was fitted on (fitted_items.txt), "
                 "e.g. data numbered by another scheme than the training data's."),
]


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Data, a model folder or an --out that cannot be used: one line saying what and where, exit 2."""
    from worker.classify import IncompatibleModelError
    from worker.training.artifact import OutDirRefused
    from worker.training.data import DataError

    try:
        yield
    except (DataError, IncompatibleModelError, OutDirRefused, FileNotFoundError, IsADirectoryError,
            NotADirectoryError, FileExistsError, json.JSONDecodeError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def say_left_out(left_out: Counter[str]) -> None:
    """Rows a head was fitted on are not scored (a few-shot sample drawn from the evaluated file, a
    refit on it): say how many, so a smaller n is not a surprise."""
    if left_out:
        per_group = ", ".join(f"{group} {n}" for group, n in sorted(left_out.items()))
        typer.echo(f"left out {sum(left_out.values())} rows the head was fitted on ({per_group}); --keep-fitted "
                   "scores them", err=True)


def say_dead_lettered(dead_lettered: Counter[tuple[str, str]]) -> None:
    """Rows the worker would dead-letter (worker/decode.py) never get a category in production, so they are not
    scored: say how many, per reason and group, so a smaller n is not a surprise."""
    per_reason: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for (group, reason), n in dead_lettered.items():
        per_reason[reason][group] += n
    parts = [f"{reason} {sum(groups.values())} ({', '.join(f'{g} {n}' for g, n in sorted(groups.items()))})"
             for reason, groups in sorted(per_reason.items())]
    if parts:
        typer.echo(f"skipped {sum(dead_lettered.values())} rows the worker would dead-letter instead of categorizing: "
                   f"{'; '.join(parts)} (empty-text: nothing left of title, tags and description after cleaning; "
                   "missing-field: no title); n counts the rows scored", err=True)


def say_trained_on(model_dir: Path, groups: list[str]) -> None:
    """Groups the head was fitted on rows of (its training languages, a few-shot language) score in-language,
    not zero-shot, and the means include them: say which, so a mean is not read as zero-shot transfer."""
    from worker.training.artifact import read_trained_groups

    if in_language := sorted(read_trained_groups(model_dir).intersection(groups)):
        typer.echo(f"{', '.join(in_language)}: the head was trained on rows of these, so they score in-language, not "
                   "zero-shot (the means include them)", err=True)


def data_paths(data: list[Path], more_data: list[Path] | None) -> list[Path]:
    """`--data A B C`: the first path from the option, the rest from the arguments after it."""
    return [*data, *(more_data or [])]


def parse_views(option: str) -> tuple[str, ...]:
    from worker.text import VIEWS

    names = tuple(v.strip() for v in option.split(",") if v.strip())
    unknown = set(names) - set(VIEWS)
    if unknown:
        raise typer.BadParameter(f"unknown views {sorted(unknown)}; known: {sorted(VIEWS)}")
    return names


def parse_labels(option: str | None) -> tuple[str, ...] | None:
    if not option:
        return None
    path = Path(option)
    names = path.read_text(encoding="utf-8").splitlines() if path.is_file() else option.split(",")
    return tuple(n.strip() for n in names if n.strip())
