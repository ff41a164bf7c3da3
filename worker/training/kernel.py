"""A kernel part: one relu unit per distinct training row, blended into the head.

Unit i fires `relu(x . x_i - threshold)` (the embeddings are unit vectors, so `x . x_i` is
their cosine) and adds `weight` times it to the logit of each of row i's labels. A query
gets votes from the training rows it is close to, on top of what the linear and MLP parts
learned: a non-parametric part that uses each neighbour's label as it is, not a summary of
the class. On SIB-200 topics it helped on every cross-language check; on skewed video
categories it lifts top-1 but costs macro-F1, so the starter does not use it (docs/experiments.md,
fourth sweep).

It keeps the head's shape, `Dense(relu) -> BatchNorm -> Dense`: the hidden kernel is the
training embeddings themselves, the output kernel their label votes. Repeated rows (a
few-shot example counted N times, two videos with the same text) become one unit whose
vote counts them all.
"""

from __future__ import annotations

import numpy as np


def kernel_units(x: np.ndarray, y: np.ndarray, weight: float, threshold: float) -> dict[str, np.ndarray]:
    """Hidden and output parameters of the kernel units over the rows of `x` (labels `y`)."""
    points, inverse = np.unique(x.astype(np.float32), axis=0, return_inverse=True)
    votes = np.zeros((len(points), y.shape[1]), np.float32)
    np.add.at(votes, inverse.ravel(), y)
    return {
        "hidden/kernel": np.ascontiguousarray(points.T),
        "hidden/bias": np.full(len(points), -threshold, np.float32),
        "scores/kernel": (weight * votes).astype(np.float32),
    }
