"""Score embeddings with the classifier head, in numpy (no TensorFlow at serving time).

The artifact (see docs/training.md) is a directory with `model.json` (labels, thresholds,
prior, encoder identity, version, ...) and `head.keras`, the Keras model the `train`
command saved. Its weights are read straight from the `.keras` zip (h5py) and the
inference-mode BatchNorm is folded into the output layer, so a prediction is two matrix
products: `sigmoid(relu(x @ W1 + b1) @ W2 + b2)`.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worker.encoders.base import EMBEDDING_DIM, EncoderIdentity
from worker.text import VIEWS, TextBudget

MODEL_JSON = "model.json"
HEAD_FILE = "head.keras"
_ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0.0),
    "gelu": lambda z: 0.5 * z * (1.0 + np.tanh(0.7978845608 * (z + 0.044715 * z**3))),
    "tanh": np.tanh,
    "linear": lambda z: z,
}


class IncompatibleModelError(Exception):
    """The head was trained on another encoder (or the artifact is not one we can read)."""


@dataclass(frozen=True)
class Classifier:
    version: str
    labels: tuple[str, ...]
    thresholds: np.ndarray  # float32 [L]
    prior: np.ndarray  # float32 [L], the training label distribution
    encoder: EncoderIdentity
    hidden_kernel: np.ndarray  # float32 [512, H]
    hidden_bias: np.ndarray  # float32 [H]
    out_kernel: np.ndarray  # float32 [H, L], BatchNorm folded in
    out_bias: np.ndarray  # float32 [L], BatchNorm folded in
    activation: str = "relu"
    # The text budget and encoder token budget the head was trained with (model.json);
    # the worker should build and embed texts with the same ones.
    text_max_chars: int = 512
    max_tokens: int = 128
    # Views (worker.text.VIEWS) whose embeddings are averaged with the full text's (model.json).
    embed_views: tuple[str, ...] = ()
    # Platt scaling of P(top label right) on `confidence_features` (model.json `confidence`); None for
    # heads trained before it, whose confidence is their top label's score.
    confidence_calibration: tuple[float, float, float] | None = None

    @property
    def text_budget(self) -> TextBudget:
        return TextBudget(self.text_max_chars, self.max_tokens)

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """float32 [n, L]: rank labels on these, not on probabilities (float32 sigmoids tie at 1.0 past ~17)."""
        return head_logits(
            embeddings, self.hidden_kernel, self.hidden_bias, self.out_kernel, self.out_bias, self.activation
        )

    def confidence(self, logits: np.ndarray) -> np.ndarray:
        """float32 [n]: the chance that each row's top label is right, as calibrated on dev."""
        if self.confidence_calibration is None:
            return sigmoid(logits.max(axis=1))
        return sigmoid(confidence_features(logits) @ np.asarray(self.confidence_calibration, dtype=np.float32))


def head_logits(
    x: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray, activation: str
) -> np.ndarray:
    """The folded head's forward pass (see `fold_head`)."""
    return _ACTIVATIONS[activation](x.astype(np.float32) @ w1 + b1) @ w2 + b2


CONFIDENCE_KEYS = ("top_logit", "margin", "bias")  # model.json `confidence`, in confidence_features' order


def confidence_features(logits: np.ndarray) -> np.ndarray:
    """float32 [n, 3]: the top logit, its margin over the second, and 1 (the bias)."""
    ranked = np.sort(logits.astype(np.float32), axis=1)
    margin = ranked[:, -1] - ranked[:, -2] if logits.shape[1] > 1 else np.zeros(len(logits), np.float32)
    return np.stack([ranked[:, -1], margin, np.ones(len(logits), np.float32)], axis=1)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """float32 probabilities of the logits."""
    return (1.0 / (1.0 + np.exp(-np.clip(logits, -60.0, 60.0)))).astype(np.float32)


def rank_labels(
    logits: np.ndarray, labels: Sequence[str], thresholds: np.ndarray
) -> list[tuple[tuple[str, float], ...]]:
    """Per row: the top label (highest logit), then every other label whose probability reaches its threshold.

    The top label comes first even under its own threshold: it is the label `evaluate` scores, and a
    lower label that passes a lower threshold is a worse first guess (docs/training.md, "Served top label").
    """
    rows: list[tuple[tuple[str, float], ...]] = []
    for row, scores in zip(logits, sigmoid(logits), strict=True):
        order = np.argsort(-row, kind="stable")
        picked = [order[0], *(i for i in order[1:] if scores[i] >= thresholds[i])]
        rows.append(tuple((labels[i], float(scores[i])) for i in picked))
    return rows


def _h5_key(class_name: str, seen: dict[str, int]) -> str:
    """Keras 3 names a layer's weights in the .keras h5 by its snake-cased class and a counter."""
    base = re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()
    count = seen.get(base, 0)
    seen[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def read_keras_head(path: Path) -> dict[str, object]:
    """Dense/BatchNorm/Dense weights and settings from a `.keras` file, keyed by layer class."""
    import h5py

    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
    seen: dict[str, int] = {}
    dense: list[tuple[dict, list[np.ndarray]]] = []
    norm: tuple[dict, list[np.ndarray]] | None = None
    for layer in config["config"]["layers"]:
        key = _h5_key(layer["class_name"], seen)
        group = weights.get(f"layers/{key}/vars")
        arrays = [np.asarray(group[str(i)], dtype=np.float32) for i in range(len(group))] if group else []
        if layer["class_name"] == "Dense":
            dense.append((layer["config"], arrays))
        elif layer["class_name"] == "BatchNormalization":
            norm = (layer["config"], arrays)
    if len(dense) != 2 or norm is None:
        raise IncompatibleModelError(f"{path}: expected Dense -> BatchNormalization -> Dense, got {config}")
    return {"dense": dense, "norm": norm}


def fold_head(parts: dict[str, object]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """(W1, b1, W2', b2', activation) with the inference-mode BatchNorm folded into W2', b2'."""
    (hidden_cfg, (w1, b1)), (_, (w2, b2)) = parts["dense"]  # type: ignore[misc]
    norm_cfg, (gamma, beta, mean, variance) = parts["norm"]  # type: ignore[misc]
    scale = gamma / np.sqrt(variance + float(norm_cfg["epsilon"]))
    shift = beta - mean * scale
    return (
        w1,
        b1,
        (scale[:, None] * w2).astype(np.float32),
        (b2 + shift @ w2).astype(np.float32),
        hidden_cfg["activation"],
    )


def check_encoder(trained_on: EncoderIdentity, serving: EncoderIdentity, where: Path) -> None:
    """A head records its encoder's name and weights (model.json); the graph version is not compared."""
    if not trained_on.same_weights(serving):
        raise IncompatibleModelError(
            f"model {where} was trained on encoder {trained_on.name} (weights sha256 "
            f"{trained_on.weights_sha256[:12]}...), but the worker runs {serving.name} (weights sha256 "
            f"{serving.weights_sha256[:12]}...): retrain the head with this encoder or serve the matching one"
        )


def read_meta(model_dir: Path) -> dict[str, Any]:
    """model.json; IncompatibleModelError when it is missing or lacks a field the worker needs."""
    try:
        meta = json.loads((model_dir / MODEL_JSON).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IncompatibleModelError(f"{model_dir}: no {MODEL_JSON}, not a model directory") from exc
    missing = [k for k in ("version", "labels", "thresholds", "prior", "encoder") if k not in meta]
    if missing:
        raise IncompatibleModelError(f"{model_dir}: {MODEL_JSON} lacks {missing}")
    return meta


def per_label(meta: dict[str, Any], field: str, labels: tuple[str, ...], where: Path) -> np.ndarray:
    """float32 [L]: a model.json list with one number per label."""
    values = np.asarray(meta[field], dtype=np.float32)
    if values.shape != (len(labels),):
        raise IncompatibleModelError(
            f"{where}: {len(labels)} labels but {field} has shape {values.shape}: a malformed head"
        )
    return values


def check_weights(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray, n_labels: int, where: Path) -> None:
    """The folded weights map a 512-d embedding to one logit per label."""
    hidden = w1.shape[1] if w1.ndim == 2 else -1
    expected = {"W1": (EMBEDDING_DIM, hidden), "b1": (hidden,), "W2": (hidden, n_labels), "b2": (n_labels,)}
    for name, array in zip(expected, (w1, b1, w2, b2), strict=True):
        if array.shape != expected[name]:
            raise IncompatibleModelError(
                f"{where}: {name} of head.keras has shape {array.shape}, expected {expected[name]} "
                f"({EMBEDDING_DIM}-d embeddings, {n_labels} labels)"
            )


def load_classifier(model_dir: Path, encoder: EncoderIdentity) -> Classifier:
    """Load and check an artifact; IncompatibleModelError if it belongs to another encoder or is malformed.

    The directory is resolved once and both files are read from it: flipping a `models/current`
    symlink while this runs cannot pair one version's model.json with another's weights.
    """
    model_dir = Path(model_dir).resolve()
    meta = read_meta(model_dir)
    trained_on = EncoderIdentity(meta["encoder"]["name"], meta["encoder"]["weights_sha256"])
    check_encoder(trained_on, encoder, model_dir)
    labels = tuple(meta["labels"])
    thresholds, prior = (per_label(meta, field, labels, model_dir) for field in ("thresholds", "prior"))
    w1, b1, w2, b2, activation = fold_head(read_keras_head(model_dir / HEAD_FILE))
    check_weights(w1, b1, w2, b2, len(labels), model_dir)
    if activation not in _ACTIVATIONS:
        raise IncompatibleModelError(f"{model_dir}: unsupported activation {activation!r}")
    embed_views = tuple(meta.get("text", {}).get("embed_views", ()))
    if unknown := sorted(set(embed_views) - set(VIEWS)):
        raise IncompatibleModelError(f"{model_dir}: unknown embed views {unknown}; this worker knows {sorted(VIEWS)}")
    return Classifier(
        version=meta["version"],
        labels=labels,
        thresholds=thresholds,
        prior=prior,
        encoder=trained_on,
        hidden_kernel=w1,
        hidden_bias=b1,
        out_kernel=w2,
        out_bias=b2,
        activation=activation,
        text_max_chars=int(meta.get("text", {}).get("max_chars", 512)),
        max_tokens=int(meta["encoder"].get("max_tokens", 128)),
        embed_views=embed_views,
        confidence_calibration=tuple(float(c[k]) for k in CONFIDENCE_KEYS) if (c := meta.get("confidence")) else None,
    )
