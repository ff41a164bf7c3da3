"""The Keras head: Dense -> BatchNorm -> Dropout -> Dense (sigmoid), binary cross-entropy.

`fit_head` fits up to three parts and stacks them into one wider head of the same shape (an
ensemble that costs one matrix product at serving time): MLP heads, one per seed, with class
weighting and early stopping on dev, whose output weights are scaled by `(1 - linear_weight) / seeds`;
the linear part (`worker.training.linear`) as relu unit pairs, scaled by `linear_weight`; and the
kernel votes (`worker.training.kernel`). The merged logits are the weighted sum of the parts'
logits: with `linear_weight` 1 (the starter) there is no MLP at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from worker.encoders.base import EMBEDDING_DIM

_NORM_EPSILON = 1e-3  # the head's BatchNormalization epsilon


@dataclass(frozen=True)
class HyperParameters:
    hidden: int = 128
    dropout: float = 0.3
    input_dropout: float = 0.5  # dropout on the embedding itself (training only)
    learning_rate: float = 1e-3
    l2: float = 1e-4
    # The hidden layer's L2 is mostly undone by the BatchNorm after it (scale invariance);
    # this one, on the output kernel, is the head's real weight penalty.
    l2_output: float = 0.0
    batch_size: int = 32
    max_epochs: int = 200
    patience: int = 10
    class_weight_power: float = 0.5  # 0 = no weighting, 1 = fully balanced
    label_smoothing: float = 0.0
    # Share of the logits from a strongly regularised linear (softmax) classifier folded
    # into the head (worker/training/linear.py); 1 = linear only, 0 = MLP seeds only.
    linear_weight: float = 0.0
    linear_l2: float = 0.03
    # The linear part's L2 pulls it toward label_prior x each label name's embedding instead of
    # zero (worker/training/linear.py, label_prior_weights); 0 = toward zero.
    label_prior: float = 0.0
    # Votes of the training rows a query is close to, added to the logits (worker/training/kernel.py):
    # each row adds kernel_weight * relu(cosine - kernel_threshold) to its labels' logits; 0 = off.
    kernel_weight: float = 0.0
    kernel_threshold: float = 0.3
    seeds: int = 2
    seed: int = 13

    def __post_init__(self) -> None:
        if self.label_prior > 0 and self.linear_weight == 0:
            raise ValueError("label_prior shapes the linear part: give linear_weight (--linear-weight) > 0 too")

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def one_hot(label_lists: Sequence[Sequence[str]], labels: Sequence[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    y = np.zeros((len(label_lists), len(labels)), dtype=np.float32)
    for row, names in enumerate(label_lists):
        for name in names:
            if name in index:
                y[row, index[name]] = 1.0
    return y


def sample_weights(y: np.ndarray, power: float) -> np.ndarray:
    """Per-row weight: mean over its positive labels of (n / (L * count))**power, scaled to mean 1."""
    counts = np.maximum(y.sum(axis=0), 1.0)
    per_class = (len(y) / (y.shape[1] * counts)) ** power
    weights = (y @ per_class) / np.maximum(y.sum(axis=1), 1.0)
    return (weights / weights.mean()).astype(np.float32)


def build_model(n_labels: int, hp: HyperParameters, hidden: int | None = None):  # -> keras.Model
    import keras

    inputs = keras.Input((EMBEDDING_DIM,), name="embedding")
    x = keras.layers.Dropout(hp.input_dropout, name="input_dropout")(inputs) if hp.input_dropout else inputs
    x = keras.layers.Dense(
        hidden or hp.hidden, activation="relu", kernel_regularizer=keras.regularizers.l2(hp.l2), name="hidden"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=_NORM_EPSILON, name="norm")(x)
    x = keras.layers.Dropout(hp.dropout, name="dropout")(x)
    penalty = keras.regularizers.l2(hp.l2_output) if hp.l2_output else None
    outputs = keras.layers.Dense(n_labels, activation="sigmoid", kernel_regularizer=penalty, name="scores")(x)
    return keras.Model(inputs, outputs, name="head")


def epoch_bar(total: int, desc: str) -> Any:
    """A Keras callback: a tqdm bar over epochs showing the dev loss (Keras' own per-batch output is
    silenced). Its class is made here because Keras is only imported once a head is fitted."""
    import keras

    class EpochBar(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.bar = tqdm(total=total, desc=desc, unit="epoch", leave=False)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.bar.set_postfix(val_loss=f"{(logs or {}).get('val_loss', float('nan')):.4f}")
            self.bar.update()

        def on_train_end(self, logs: dict | None = None) -> None:
            self.bar.close()

    return EpochBar()


def fit_one(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    hp: HyperParameters,
    seed: int,
    dev: tuple[np.ndarray, np.ndarray] | None = None,
    epochs: int | None = None,
):
    """(model, epochs): early stopping on `dev` (best weights, best epoch), or exactly `epochs` without dev."""
    import keras

    keras.utils.set_random_seed(seed)
    model = build_model(y.shape[1], hp)
    loss = keras.losses.BinaryCrossentropy(label_smoothing=hp.label_smoothing)
    model.compile(optimizer=keras.optimizers.Adam(hp.learning_rate), loss=loss)
    epochs = epochs or hp.max_epochs
    callbacks = [epoch_bar(epochs, f"seed {seed}")]
    if dev is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=hp.patience, restore_best_weights=True)
        )
    history = model.fit(
        x,
        y,
        sample_weight=w,
        validation_data=dev,
        batch_size=hp.batch_size,
        epochs=epochs,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    losses = history.history.get("val_loss")
    return model, int(np.argmin(losses)) + 1 if losses else len(history.epoch)


def _named_weights(model) -> dict[str, np.ndarray]:
    return {w.path.split("/")[-2] + "/" + w.path.split("/")[-1]: w.numpy() for w in model.weights}


def merge_heads(
    n_labels: int, parts: Sequence[dict[str, np.ndarray]], output_bias: np.ndarray, hp: HyperParameters
):
    """One head whose logits are the sum of the parts' (their output kernels already weighted)."""
    hidden = sum(p["hidden/bias"].shape[0] for p in parts)
    merged = build_model(n_labels, hp, hidden=hidden)

    def cat(name: str, axis: int) -> np.ndarray:
        return np.concatenate([p[name] for p in parts], axis=axis)

    merged.get_layer("hidden").set_weights([cat("hidden/kernel", 1), cat("hidden/bias", 0)])
    merged.get_layer("norm").set_weights(
        [
            cat("norm/gamma", 0),
            cat("norm/beta", 0),
            cat("norm/moving_mean", 0),
            cat("norm/moving_variance", 0),
        ]
    )
    merged.get_layer("scores").set_weights([cat("scores/kernel", 0), output_bias.astype(np.float32)])
    return merged


def served_logits(model, x: np.ndarray) -> np.ndarray:
    """The logits the worker computes for `x` with this head (folded as worker.classify folds it)."""
    from worker.classify import fold_head, head_logits

    hidden, norm, scores = (model.get_layer(name) for name in ("hidden", "norm", "scores"))
    folded = fold_head(
        {
            "dense": [(hidden.get_config(), hidden.get_weights()), (scores.get_config(), scores.get_weights())],
            "norm": (norm.get_config(), norm.get_weights()),
        }
    )
    return head_logits(x, *folded)


@dataclass(frozen=True)
class FittedHead:
    model: object  # keras.Model, merged and uncompiled
    epochs: tuple[int, ...]  # each MLP seed's epoch count (its best on dev); empty when linear only


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    dev_x: np.ndarray | None,
    dev_y: np.ndarray | None,
    hp: HyperParameters,
    epochs: Sequence[int] = (),
    label_embeddings: np.ndarray | None = None,
) -> FittedHead:
    """The merged (uncompiled, so no optimizer state is saved) head.

    Logits = (1 - linear_weight) * mean of the `hp.seeds` MLP heads' logits
           + linear_weight * the linear classifier's logits
           + kernel_weight * the training rows' votes (when kernel_weight > 0).
    Each MLP seed stops early on dev, or, given `epochs` (a refit without dev), trains for its count.
    `label_embeddings` ([L, 512], the label names embedded) are needed when `hp.label_prior` > 0.
    """
    from worker.training.kernel import kernel_units
    from worker.training.linear import fit_linear, folded_units, label_prior_weights

    if hp.label_prior > 0 and label_embeddings is None:
        raise ValueError("label_prior needs the label names' embeddings")
    dev = None if dev_x is None or dev_y is None else (dev_x, dev_y)
    if dev is None and not epochs and hp.linear_weight < 1:
        raise ValueError("an MLP head needs dev data to stop on, or the epoch count of each seed")
    parts: list[dict[str, np.ndarray]] = []
    seed_epochs: list[int] = []
    bias = np.zeros(y.shape[1], np.float32)
    mlp_share = 1.0 - hp.linear_weight
    if mlp_share > 0:
        w = sample_weights(y, hp.class_weight_power)
        for i in range(hp.seeds):
            model, best = fit_one(x, y, w, hp, hp.seed + i, dev, epochs[i] if epochs else None)
            seed_epochs.append(best)
            named = _named_weights(model)
            named["scores/kernel"] = named["scores/kernel"] * mlp_share / hp.seeds
            bias += named["scores/bias"] * mlp_share / hp.seeds
            parts.append(named)
    if hp.linear_weight > 0:
        prior = label_prior_weights(label_embeddings, hp.label_prior) if hp.label_prior > 0 else None
        kernel, linear_bias = fit_linear(x, y, hp.linear_l2, prior)
        parts.append(with_identity_norm(folded_units(kernel, np.zeros_like(linear_bias), hp.linear_weight)))
        bias += hp.linear_weight * linear_bias
    if hp.kernel_weight > 0:
        parts.append(with_identity_norm(kernel_units(x, y, hp.kernel_weight, hp.kernel_threshold)))
    return FittedHead(merge_heads(y.shape[1], parts, bias, hp), tuple(seed_epochs))


def with_identity_norm(units: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Hidden units fitted outside Keras, behind an inference-mode BatchNorm that leaves them as they are."""
    n = units["hidden/bias"].shape[0]
    return {
        **units,
        "norm/gamma": np.ones(n, np.float32),
        "norm/beta": np.zeros(n, np.float32),
        "norm/moving_mean": np.zeros(n, np.float32),
        "norm/moving_variance": np.full(n, 1.0 - _NORM_EPSILON, np.float32),
    }
