"""A strongly regularised linear classifier, blended into the head.

On video metadata the MLP head learns English/French specifics that do not carry over to
other languages; a multinomial logistic regression with a strong L2 penalty transfers
better (dev_BR, docs/training.md). It is fitted here in numpy (full-batch Adam, seeded by
nothing: it starts from zeros, so it is deterministic) and folded into the head's shape,
so the worker still serves one `Dense(relu) -> BatchNorm -> Dense(sigmoid)` head: a linear
logit `z` is `relu(z) - relu(-z)`, i.e. two hidden units per label with output weights
+1 / -1 (behind an identity BatchNorm).
"""

from __future__ import annotations

import numpy as np

# The embeddings are L2-normalised (entries ~0.04): scaling them keeps Adam's steps sensible.
_INPUT_SCALE = 10.0


def fit_linear(
    x: np.ndarray,
    y: np.ndarray,
    l2: float,
    prior: np.ndarray | None = None,
    iterations: int = 400,
    learning_rate: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """(W [512, L], b [L]) of a softmax regression on `x` (targets: `y` rows normalised).

    The L2 penalty pulls W toward `prior` ([512, L], label_prior_weights) instead of zero when given.
    """
    xs = x.astype(np.float64) * _INPUT_SCALE
    anchor = 0.0 if prior is None else prior.astype(np.float64) / _INPUT_SCALE
    targets = y / np.maximum(y.sum(axis=1, keepdims=True), 1.0)
    params = [np.zeros((x.shape[1], y.shape[1])), np.zeros(y.shape[1])]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    for step in range(1, iterations + 1):
        z = xs @ params[0] + params[1]
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - targets) / len(xs)
        grads = [xs.T @ g + l2 * (params[0] - anchor), g.sum(axis=0)]
        for i, grad in enumerate(grads):
            first[i] = 0.9 * first[i] + 0.1 * grad
            second[i] = 0.999 * second[i] + 0.001 * grad * grad
            m_hat, v_hat = first[i] / (1 - 0.9**step), second[i] / (1 - 0.999**step)
            params[i] -= learning_rate * m_hat / (np.sqrt(v_hat) + 1e-8)
    return (params[0] * _INPUT_SCALE).astype(np.float32), params[1].astype(np.float32)


def label_prior_weights(label_embeddings: np.ndarray, strength: float) -> np.ndarray:
    """[512, L]: W whose logits are `strength` x the cosine of an embedding with each label name's.

    A linear head shrunk toward these rather than toward zero starts from what the label names
    mean in the encoder's language-neutral space and learns the training data's corrections to it:
    the rare categories, with few training rows to go on, lean on their names (docs/training.md).
    """
    return (strength * label_embeddings.T).astype(np.float32)


def linear_logits(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return x @ w + b


def folded_units(w: np.ndarray, b: np.ndarray, weight: float) -> dict[str, np.ndarray]:
    """Hidden and output parameters of 2L relu units computing `weight * (x @ w + b)`."""
    eye = np.eye(w.shape[1], dtype=np.float32)
    return {
        "hidden/kernel": np.concatenate([w, -w], axis=1),
        "hidden/bias": np.concatenate([b, -b]),
        "scores/kernel": weight * np.concatenate([eye, -eye], axis=0),
    }
