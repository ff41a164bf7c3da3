"""The few-shot experiment: zero-shot vs K examples per class of a new language.

`python -m worker.training.fewshot --train T.jsonl --target dev_BR.jsonl --work DIR`
splits the target file in two stratified halves (seeded), trains one head per K with
`--few-shot-data` = half A, and evaluates every head on half B. Prints a Markdown table.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from worker.training.options import EncoderOption

# The starter model's settings (docs/training.md), so the table measures what is shipped.
STARTER_LINEAR_WEIGHT = 1.0
STARTER_LABEL_PRIOR = 7.0
STARTER_TEXT_MAX_CHARS = 1024
STARTER_MAX_TOKENS = 256
STARTER_VIEWS = ("title_tags",)
STARTER_REFIT = True
STARTER_EMBED_VIEWS = ("title_tags",)


def write_halves(target: Path, work: Path, seed: int) -> tuple[Path, Path]:
    from worker.training.splits import split_holdout

    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines() if line.strip()]
    keyed = [_Keyed(i, (str(r.get("category")),)) for i, r in enumerate(rows)]
    half_a, half_b = split_holdout(keyed, 0.5, seed)  # type: ignore[arg-type]
    paths = (work / f"{target.stem}.shots.jsonl", work / f"{target.stem}.eval.jsonl")
    for path, half in zip(paths, (half_a, half_b), strict=True):
        path.write_text(
            "".join(json.dumps(rows[k.index], ensure_ascii=False) + "\n" for k in half), encoding="utf-8"
        )
    return paths


class _Keyed:
    """Row index + labels: enough for `split_holdout`, which only reads `.labels`."""

    def __init__(self, index: int, labels: tuple[str, ...]) -> None:
        self.index, self.labels = index, labels


def main(
    train: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Labelled training videos (JSON Lines).")],
    target: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="Labelled videos of the new language (JSON Lines).")
    ],
    work: Annotated[
        Path, typer.Option(help="Folder for the two halves of --target and one head per K (k0, k5, ...).")
    ] = Path("reports/fewshot"),
    shots: Annotated[
        list[int] | None, typer.Option("--k", min=1, help="K examples per class from half A; repeatable (5 20 50).")
    ] = None,
    encoder: EncoderOption = None,
    seed: Annotated[int, typer.Option(help="Seeds the halves, the dev split, the shots and the heads.")] = 13,
) -> None:
    """Zero-shot vs K labelled examples per class of a new language: one head per K, all scored on half B."""
    from worker.training.head import HyperParameters
    from worker.training.pipeline import TrainRequest, run_evaluation, run_training

    work.mkdir(parents=True, exist_ok=True)
    shots_path, eval_path = write_halves(target, work, seed)
    lines = ["| K per class | accuracy | macro-F1 | majority | n |", "|---:|---:|---:|---:|---:|"]
    for k in [0, *(shots or [5, 20, 50])]:
        request = TrainRequest(
            data=[train],
            out=work / f"k{k}",
            dev=[],
            few_shot_data=[shots_path] if k else [],
            few_shot=k,
            labels=None,
            dev_fraction=0.15,
            hp=replace(
                HyperParameters(), seed=seed, linear_weight=STARTER_LINEAR_WEIGHT, label_prior=STARTER_LABEL_PRIOR
            ),
            text_max_chars=STARTER_TEXT_MAX_CHARS,
            max_tokens=STARTER_MAX_TOKENS,
            views=STARTER_VIEWS,
            refit=STARTER_REFIT,
            embed_views=STARTER_EMBED_VIEWS,
        )
        run_training(request, encoder)
        summary, *_ = run_evaluation(work / f"k{k}", [eval_path], encoder)
        (group,) = summary["groups"].values()
        lines.append(
            f"| {k} | {group['accuracy']:.3f} | {group['macro_f1']:.3f} | {group['majority']:.3f} | {group['n']} |"
        )
        typer.echo(lines[-1], err=True)
    typer.echo("\n".join(lines))


if __name__ == "__main__":
    typer.run(main)
