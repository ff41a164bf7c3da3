"""The steps behind `train`, `evaluate` and `compare`: read, embed (cached), fit, calibrate, score, save."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from worker.classify import Classifier, load_classifier, sigmoid
from worker.embed import flatten, mean_per_item
from worker.encoders.base import muse_identity
from worker.settings import EncoderKind
from worker.text import DEFAULT_MAX_CHARS
from worker.training.artifact import read_fitted_items
from worker.training.compare import GroupComparison, compare_groups
from worker.training.data import DataError, Example, item_key, read_few_shot_pool, read_for_evaluation, with_views
from worker.training.embed_cache import EmbeddingCache, LazyEncoder
from worker.training.head import HyperParameters, fit_head, one_hot, served_logits
from worker.training.metrics import calibrate_confidence, calibrate_thresholds
from worker.training.report import GroupResult, as_json, score_groups
from worker.training.splits import (
    DEFAULT_FEW_SHOT_WEIGHT,
    few_shot_sample,
    fingerprint,
    label_set,
    load_training_data,
    training_caveats,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True, kw_only=True)
class TrainRequest:
    data: list[Path]
    out: Path
    dev: list[Path]
    few_shot_data: list[Path]
    few_shot: int
    labels: tuple[str, ...] | None
    dev_fraction: float
    hp: HyperParameters
    text_max_chars: int = DEFAULT_MAX_CHARS
    max_tokens: int | None = None  # None: the WORKER_MAX_TOKENS setting, else 128
    views: tuple[str, ...] = ()  # extra training texts per video (text.VIEWS)
    refit: bool = False  # after calibrating on dev, fit again on train + dev (see run_training)
    few_shot_weight: int = DEFAULT_FEW_SHOT_WEIGHT  # each few-shot example counts as this many rows
    embed_views: tuple[str, ...] = ()  # views averaged with the full text when scored and served

    def __post_init__(self) -> None:
        if self.few_shot < 0:
            raise ValueError("--few-shot K is a count of examples per class: 0 (zero-shot) or more")
        if self.few_shot > 0 and not self.few_shot_data:
            raise ValueError("--few-shot K takes its examples from --few-shot-data: name the new language's data")
        if self.few_shot_data and self.few_shot == 0:
            raise ValueError("--few-shot-data is used only with --few-shot K (K examples per class)")


def _cache(kind: EncoderKind | None, max_tokens: int | None = None) -> EmbeddingCache:
    encoder = LazyEncoder(kind, max_tokens)
    return EmbeddingCache(encoder, encoder.max_tokens)


def embed_as_served(cache: EmbeddingCache, examples: list[Example]) -> np.ndarray:
    """Each example's embedding as the worker serves it: its text's, averaged with its `embed_with` texts'."""
    texts, owners = flatten([e.text for e in examples], [e.embed_with for e in examples])
    return mean_per_item(cache.embed(texts), owners, len(examples))


def restrict_labels(examples: list[Example], labels: tuple[str, ...]) -> list[Example]:
    """Drop labels outside the label set, and examples left with none."""
    allowed = set(labels)
    kept = []
    for ex in examples:
        names = tuple(n for n in ex.labels if n in allowed)
        if names:
            kept.append(replace(ex, labels=names))
    return kept


def item_prior(rows: Sequence[Example], labels: Sequence[str]) -> np.ndarray:
    """Each label's share of the items fitted on, every video or sentence once: not weighted by its extra
    view rows or few-shot repeats (the drift gauge compares served categories with it)."""
    items = {item_key(ex): ex for ex in rows}
    counts = one_hot([ex.labels for ex in items.values()], labels).sum(axis=0) + 1e-9
    return (counts / counts.sum()).astype(np.float32)


@dataclass(frozen=True)
class TrainingSet:
    train: list[Example]  # views expanded, few-shot rows repeated by their weight
    dev: list[Example]
    shots: list[Example]  # the few-shot sample, once each
    labels: tuple[str, ...]


@dataclass(frozen=True)
class TrainedHead:
    model: object  # the Keras head that is shipped
    rows: list[Example]  # what it was fitted on (train, plus dev's rows after a refit)
    y: np.ndarray  # their labels, one-hot
    thresholds: np.ndarray  # calibrated on dev
    confidence: dict[str, float] | None  # P(top label right), calibrated on dev (model.json `confidence`)
    dev_results: list[GroupResult]  # dev scored before any refit
    mlp_epochs: tuple[int, ...]


def read_training_set(request: TrainRequest) -> TrainingSet:
    """The examples to fit and calibrate on, restricted to the label set."""
    seed, chars = request.hp.seed, request.text_max_chars
    train, dev = load_training_data(
        request.data, request.dev, request.dev_fraction, seed, chars, request.views, request.embed_views
    )
    shots: list[Example] = []
    if request.few_shot > 0:
        pool = [ex for path in request.few_shot_data for ex in read_few_shot_pool(path, chars, request.views)]
        shots, _ = few_shot_sample(pool, request.few_shot, seed)
    fitted = {item_key(ex) for ex in train + shots}
    dev = [ex for ex in dev if item_key(ex) not in fitted]  # e.g. the eng/fra translations of SIB-200 shots
    labels = request.labels or label_set(train + dev + shots)  # a label only the shots have is learnt too
    weighted_shots = shots * request.few_shot_weight
    train, dev = with_views(restrict_labels(train + weighted_shots, labels)), restrict_labels(dev, labels)
    if not train or not dev:
        raise DataError(f"need training and dev examples, got {len(train)} and {len(dev)}: a SIB-200 folder trains "
                        "on <lang>/train.tsv and stops early on <lang>/dev.tsv (a language with dev.tsv only is "
                        "zero-shot: not for training); other data without a dev split needs --dev")
    return TrainingSet(train, dev, shots, labels)


def fit_and_calibrate(data: TrainingSet, cache: EmbeddingCache, hp: HyperParameters, refit: bool) -> TrainedHead:
    """Fit with early stopping on dev, calibrate the thresholds and score dev; then refit if asked."""
    labels, train, dev = data.labels, data.train, data.dev
    x, y = cache.embed([e.text for e in train]), one_hot([e.labels for e in train], labels)
    dev_x, dev_y = embed_as_served(cache, dev), one_hot([e.labels for e in dev], labels)
    label_x = cache.embed(list(labels)) if hp.label_prior > 0 else None
    fitted = fit_head(x, y, dev_x, dev_y, hp, label_embeddings=label_x)
    dev_logits = served_logits(fitted.model, dev_x)
    thresholds = calibrate_thresholds(sigmoid(dev_logits), dev_y)
    confidence = calibrate_confidence(dev_logits, dev_y)
    dev_results = score_groups(
        [e.group for e in dev], [labels[i] for i in dev_logits.argmax(1)], [e.labels for e in dev], labels
    )
    if not refit:
        return TrainedHead(fitted.model, train, y, thresholds, confidence, dev_results, fitted.epochs)
    # Dev has chosen the epochs and thresholds and been scored; now its rows join the fit.
    dev_rows = with_views(dev)
    rows, all_y = train + dev_rows, np.concatenate([y, one_hot([e.labels for e in dev_rows], labels)])
    x_all = np.concatenate([x, cache.embed([e.text for e in dev_rows])])
    model = fit_head(x_all, all_y, None, None, hp, fitted.epochs, label_x).model
    return TrainedHead(model, rows, all_y, thresholds, confidence, dev_results, fitted.epochs)


def model_metadata(request: TrainRequest, data: TrainingSet, head: TrainedHead, cache: EmbeddingCache) -> dict:
    """model.json's fields (docs/training.md, "The artifact"); the version is added when written."""
    return {
        "labels": list(data.labels),
        "thresholds": [round(float(t), 4) for t in head.thresholds],
        "confidence": head.confidence,
        "prior": [round(float(p), 6) for p in item_prior(head.rows, data.labels)],
        "encoder": {
            "name": cache.encoder.identity.name,
            "weights_sha256": cache.encoder.identity.weights_sha256,
            "max_tokens": cache.max_tokens,
        },
        "text": {
            "builder": "worker.text.build_text",
            "max_chars": request.text_max_chars,
            "training_views": list(request.views),
            "embed_views": list(request.embed_views),
        },
        "training_data": {
            "fingerprint": fingerprint(head.rows),
            "dev_fingerprint": fingerprint(data.dev),
            "sources": [p.name for p in request.data],
            "groups": sorted({ex.group for ex in head.rows}),  # languages / regions fitted on
            "few_shot": {
                "k": request.few_shot,
                "weight": request.few_shot_weight,
                "sources": [p.name for p in request.few_shot_data],
                "n": len(data.shots),
            },
            "n_train": len(head.rows),
            "n_dev": len(data.dev),
            "refit_on_dev": request.refit,
            "mlp_epochs": list(head.mlp_epochs),
            "label_counts": dict(sorted(Counter(ex.labels[0] for ex in head.rows).items())),
        },
        "hyper_parameters": request.hp.as_dict(),
        "metrics": {"dev": {k: v for k, v in as_json("", head.dev_results).items() if k != "model_version"}},
    }


def run_training(
    request: TrainRequest, kind: EncoderKind | None, warn: Callable[[str], object] = log.warning
) -> dict[str, Any]:
    """Read, embed (cached), fit, calibrate, and write the model directory; returns its model.json.

    `warn` hears what the data calls for but does not stop it (`splits.training_caveats`), before the fit."""
    from worker.training.artifact import check_out_dir, write_artifact

    check_out_dir(request.out)  # before the work, not after it
    data = read_training_set(request)
    for caveat in training_caveats(data.train, data.dev, request.data, request.dev, request.refit):
        warn(caveat)
    cache = _cache(kind, request.max_tokens)
    head = fit_and_calibrate(data, cache, request.hp, request.refit)
    fitted = (item_key(ex) for ex in head.rows)
    return write_artifact(request.out, head.model, model_metadata(request, data, head, cache), fitted)


@dataclass(frozen=True)
class Scored:
    """A model's top labels for every evaluation row, as the worker would serve them."""

    classifier: Classifier
    examples: list[Example]
    logits: np.ndarray
    predicted: list[str]
    left_out: Counter[str]  # per group, the rows left out because a head being scored was fitted on them
    dead_lettered: Counter[tuple[str, str]]  # per (group, reason), the rows the worker would not categorize


def score_model(
    model_dir: Path, paths: list[Path], kind: EncoderKind | None, fitted: frozenset[str] | None = None
) -> Scored:
    """Score the rows of `paths`, leaving out the items in `fitted` (default: those the model was fitted on) and
    the rows the worker would dead-letter for their text (`data.dead_letter_reason`).

    DataError when no row is left, or when no row's gold label is one of the head's."""
    classifier = load_classifier(model_dir, muse_identity())
    fitted = read_fitted_items(model_dir) if fitted is None else fitted
    # The texts and token budget the model was trained with: what the worker must serve it with.
    cache = _cache(kind, classifier.max_tokens)
    examples, left_out, dead_lettered = [], Counter(), Counter()
    chars, views = classifier.text_max_chars, classifier.embed_views
    for ex in (ex for path in paths for ex in read_for_evaluation(path, chars, views, mark_refused=True)):
        if ex.refused:
            dead_lettered[ex.group, ex.refused] += 1
        elif item_key(ex) in fitted:
            left_out[ex.group] += 1
        else:
            examples.append(ex)
    where = ", ".join(map(str, paths))
    if not examples:
        why = " (all left out as fitted on or dead-lettered)" if left_out or dead_lettered else ""
        raise DataError(f"no labelled rows to score in {where}{why}")
    unknown = Counter(label for ex in examples for label in ex.labels if label not in classifier.labels)
    if all(label in unknown for ex in examples for label in ex.labels):
        raise DataError(f"none of the gold labels in {where} is one of the head's (gold: {sorted(unknown)[:10]}; "
                        f"head: {list(classifier.labels)}): data labelled for another head?")
    logits = classifier.logits(embed_as_served(cache, examples))
    if unknown:  # those rows count as wrong: say so, or a relabelled class reads as a bad head
        log.warning("gold_labels_unknown", model=classifier.version, rows=dict(unknown.most_common(10)))
    predicted = [classifier.labels[i] for i in logits.argmax(1)]
    return Scored(classifier, examples, logits, predicted, left_out, dead_lettered)


def run_evaluation(
    model_dir: Path, paths: list[Path], kind: EncoderKind | None, keep_fitted: bool = False
) -> tuple[dict[str, Any], list[GroupResult], tuple[str, ...], Counter[str], Counter[tuple[str, str]]]:
    """(the --json summary, per-group results, the labels, per group the rows left out as fitted on, per
    (group, reason) the rows not scored because the worker would dead-letter them)."""
    scored = score_model(model_dir, paths, kind, frozenset() if keep_fitted else None)
    classifier, examples = scored.classifier, scored.examples
    results = score_groups(
        [e.group for e in examples],
        scored.predicted,
        [e.labels for e in examples],
        classifier.labels,
        classifier.confidence(scored.logits),
    )
    return as_json(classifier.version, results), results, classifier.labels, scored.left_out, scored.dead_lettered


def run_comparison(
    baseline_dir: Path, candidate_dir: Path, paths: list[Path], kind: EncoderKind | None, keep_fitted: bool = False
) -> tuple[str, str, list[GroupComparison], Counter[str], Counter[tuple[str, str]]]:
    """(baseline version, candidate version, per-group paired comparison, rows left out, rows dead-lettered) on
    the same rows: those neither head was fitted on (all of them with `keep_fitted`) that the worker serves."""
    fitted = frozenset() if keep_fitted else read_fitted_items(baseline_dir) | read_fitted_items(candidate_dir)
    baseline, candidate = (score_model(d, paths, kind, fitted) for d in (baseline_dir, candidate_dir))
    rows = [(e.group, e.labels) for e in baseline.examples]
    if rows != [(e.group, e.labels) for e in candidate.examples]:
        raise ValueError("the two models read different rows from the data; compare needs the same rows")
    groups, gold = zip(*rows, strict=True) if rows else ((), ())
    comparisons = compare_groups(groups, gold, baseline.predicted, candidate.predicted)
    return (baseline.classifier.version, candidate.classifier.version, comparisons, baseline.left_out,
            baseline.dead_lettered)
