"""`train`, `evaluate` and `compare`: the CLI commands (registered in worker/cli.py) for the classifier head.

TensorFlow/Keras are imported inside the functions, so `python -m worker --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from worker.training.options import (
    DataOption,
    EncoderOption,
    KeepFittedOption,
    MoreDataArgument,
    data_paths,
    parse_labels,
    parse_views,
    say_dead_lettered,
    say_left_out,
    say_trained_on,
    user_errors,
)
from worker.training.splits import DEFAULT_FEW_SHOT_WEIGHT


def _hp_default(name: str):
    from worker.training.head import HyperParameters

    return getattr(HyperParameters(), name)


def train(
    data: DataOption,
    out: Annotated[
        Path,
        typer.Option("--out", help="New or model directory to write (a model directory is replaced, keeping its "
                     "other files)."),
    ],
    dev: Annotated[
        list[Path] | None,
        typer.Option("--dev", exists=True, help="Separate dev data (instead of the held-out split)."),
    ] = None,
    few_shot_data: Annotated[
        list[Path] | None,
        typer.Option(
            "--few-shot-data",
            exists=True,
            help="Labelled data in a new language to take --few-shot K per class from.",
        ),
    ] = None,
    few_shot: Annotated[
        int, typer.Option("--few-shot", min=0, help="K examples per class from --few-shot-data (0 = zero-shot).")
    ] = 0,
    few_shot_weight: Annotated[
        int, typer.Option(min=1, help="Each few-shot example counts as this many training rows.")
    ] = DEFAULT_FEW_SHOT_WEIGHT,
    labels: Annotated[
        str | None,
        typer.Option("--labels", help="Label set: comma-separated, or a file with one label per line."),
    ] = None,
    encoder: EncoderOption = None,
    dev_fraction: Annotated[
        float, typer.Option(min=0.01, max=0.9, help="Share of a JSON Lines file held out as dev.")
    ] = 0.15,
    hidden: Annotated[int, typer.Option(min=1, help="Hidden units per seed.")] = _hp_default("hidden"),
    dropout: Annotated[
        float, typer.Option(min=0.0, max=0.95, help="Dropout after the BatchNorm.")
    ] = _hp_default("dropout"),
    input_dropout: Annotated[
        float, typer.Option(min=0.0, max=0.95, help="Dropout on the input embedding.")
    ] = _hp_default("input_dropout"),
    learning_rate: Annotated[
        float, typer.Option(min=1e-7, help="Adam learning rate.")
    ] = _hp_default("learning_rate"),
    l2: Annotated[float, typer.Option(min=0.0, help="L2 penalty on the hidden kernel.")] = _hp_default("l2"),
    l2_output: Annotated[float, typer.Option(min=0.0, help="L2 penalty on the output kernel.")] = _hp_default(
        "l2_output"
    ),
    batch_size: Annotated[int, typer.Option(min=1, help="Mini-batch size.")] = _hp_default("batch_size"),
    max_epochs: Annotated[
        int, typer.Option(min=1, help="Epoch cap (early stopping usually ends sooner).")
    ] = _hp_default("max_epochs"),
    patience: Annotated[
        int, typer.Option(min=1, help="Epochs without dev-loss improvement before stopping.")
    ] = _hp_default("patience"),
    class_weight_power: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Class weighting: 0 none, 1 fully balanced.")
    ] = _hp_default("class_weight_power"),
    linear_weight: Annotated[
        float,
        typer.Option(min=0.0, max=1.0,
                     help="Share of the logits from a regularised linear classifier (1 = linear only)."),
    ] = _hp_default("linear_weight"),
    linear_l2: Annotated[
        float, typer.Option(min=0.0, help="L2 penalty of that linear classifier.")
    ] = _hp_default("linear_l2"),
    label_prior: Annotated[
        float,
        typer.Option(
            help="The linear classifier's L2 pulls it toward this x the cosine with each label name's "
            "embedding instead of toward zero (0 = toward zero)."
        ),
    ] = _hp_default("label_prior"),
    kernel_weight: Annotated[
        float,
        typer.Option(min=0.0, help="Each training row adds this * relu(cosine - threshold) to its labels' logits; "
                     "0 = off."),
    ] = _hp_default("kernel_weight"),
    kernel_threshold: Annotated[
        float, typer.Option(help="Cosine similarity below which a training row does not vote.")
    ] = _hp_default("kernel_threshold"),
    label_smoothing: Annotated[
        float,
        typer.Option(min=0.0, max=0.5, help="Label smoothing of the binary cross-entropy targets."),
    ] = _hp_default("label_smoothing"),
    text_max_chars: Annotated[
        int, typer.Option(min=1, help="Character budget of build_text (stored in the model; serve with the same).")
    ] = 512,
    max_tokens: Annotated[
        int | None,
        typer.Option(min=1, help="Encoder token budget (default: WORKER_MAX_TOKENS; stored in the model)."),
    ] = None,
    views: Annotated[
        str,
        typer.Option(
            help="Extra training texts per video, comma-separated: title_tags, title_description, title."
        ),
    ] = "",
    embed_views: Annotated[
        str,
        typer.Option(
            help="Views whose embeddings are averaged with the full text's when the model is scored and "
            "served (comma-separated, as --views; stored in the model; one more encoder text per view)."
        ),
    ] = "",
    refit: Annotated[
        bool,
        typer.Option(
            help="After early stopping, calibration and the dev report, fit again on train + dev (each MLP "
            "seed for its best epoch count) and ship that head. Not for SIB-200 style parallel data judged "
            "on other languages' dev split: those are translations of the dev sentences fitted on."
        ),
    ] = False,
    seeds: Annotated[
        int, typer.Option(min=1, help="Heads trained with consecutive seeds and merged (logit mean).")
    ] = _hp_default("seeds"),
    seed: Annotated[
        int, typer.Option(help="First seed (also seeds the dev split and few-shot sample).")
    ] = _hp_default("seed"),
    more_data: MoreDataArgument = None,
) -> None:
    """Train the classifier head on labelled data and write a model artifact."""
    from worker.training.head import HyperParameters
    from worker.training.pipeline import TrainRequest, run_training

    try:
        hp = HyperParameters(
            hidden=hidden,
            dropout=dropout,
            input_dropout=input_dropout,
            learning_rate=learning_rate,
            l2=l2,
            l2_output=l2_output,
            batch_size=batch_size,
            max_epochs=max_epochs,
            patience=patience,
            class_weight_power=class_weight_power,
            label_smoothing=label_smoothing,
            linear_weight=linear_weight,
            linear_l2=linear_l2,
            label_prior=label_prior,
            kernel_weight=kernel_weight,
            kernel_threshold=kernel_threshold,
            seeds=seeds,
            seed=seed,
        )
        request = TrainRequest(
            data=data_paths(data, more_data),
            out=out,
            dev=dev or [],
            few_shot_data=few_shot_data or [],
            few_shot=few_shot,
            labels=parse_labels(labels),
            dev_fraction=dev_fraction,
            hp=hp,
            text_max_chars=text_max_chars,
            max_tokens=max_tokens,
            views=parse_views(views),
            refit=refit,
            few_shot_weight=few_shot_weight,
            embed_views=parse_views(embed_views),
        )
    except ValueError as error:  # a combination of options that does not fit together
        raise typer.BadParameter(str(error)) from error
    with user_errors():
        meta = run_training(request, encoder, lambda caveat: typer.echo(f"warning: {caveat}", err=True))
    typer.echo(
        f"wrote {out} version {meta['version']}; dev accuracy {meta['metrics']['dev']['mean_accuracy']:.3f}",
        err=True,
    )


def evaluate(
    model: Annotated[Path, typer.Option("--model", exists=True, file_okay=False, help="Model directory.")],
    data: DataOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout.")] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write report.md and accuracy.png here.")
    ] = None,
    encoder: EncoderOption = None,
    keep_fitted: KeepFittedOption = False,
    more_data: MoreDataArgument = None,
) -> None:
    """Per language/region: rows, top-1 accuracy, macro-F1 and the majority baseline."""
    from worker.training.pipeline import run_evaluation
    from worker.training.report import as_table, means_lines, write_report

    with user_errors():
        summary, results, labels, left_out, dead_lettered = run_evaluation(
            model, data_paths(data, more_data), encoder, keep_fitted
        )
        say_left_out(left_out)
        say_dead_lettered(dead_lettered)
        say_trained_on(model, [r.name for r in results])
        if report is not None:
            path = write_report(report, summary, results, labels)
            typer.echo(f"report written to {path}", err=True)
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        typer.echo(f"model {summary['model_version']}\n{as_table(results)}")
        typer.echo("\n".join(means_lines(results)))


def compare(
    model: Annotated[Path, typer.Option("--model", exists=True, file_okay=False, help="Candidate model directory.")],
    baseline: Annotated[
        Path, typer.Option("--baseline", exists=True, file_okay=False, help="Model directory it would replace.")
    ],
    data: DataOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout.")] = False,
    alpha: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Significance level, Bonferroni-corrected over the groups and metrics."),
    ] = 0.05,
    encoder: EncoderOption = None,
    keep_fitted: KeepFittedOption = False,
    more_data: MoreDataArgument = None,
) -> None:
    """Per language/region, both models' accuracy and macro-F1 on the same rows, each with a paired test
    (exact McNemar; approximate randomization).

    Exits 1 when the candidate is worse than the baseline beyond chance on either metric in any group
    or pooled: a gate to run before pointing WORKER_MODEL_DIR at a new head.
    """
    from worker.training import compare as comparison
    from worker.training.pipeline import run_comparison

    with user_errors():
        old, new, results, left_out, dead_lettered = run_comparison(
            baseline, model, data_paths(data, more_data), encoder, keep_fitted
        )
    say_left_out(left_out)
    say_dead_lettered(dead_lettered)
    worse = comparison.worse_metrics(results, alpha)
    if as_json:
        sys.stdout.write(json.dumps(comparison.as_json(old, new, results, alpha)) + "\n")
    else:
        typer.echo(f"baseline {old}, candidate {new}\n{comparison.as_table(results)}")
        where = ", ".join(f"{group} ({', '.join(metrics)})" for group, metrics in worse.items())
        verdict = f"worse beyond chance (alpha {alpha}) on: {where}" if worse else "not worse beyond chance"
        typer.echo(f"candidate {verdict}")
    if worse:
        raise typer.Exit(1)
