"""The numpy classifier must score exactly like the Keras head it was read from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from worker.classify import IncompatibleModelError, load_classifier, rank_labels, sigmoid
from worker.encoders.base import EncoderIdentity
from worker.training.artifact import write_artifact
from worker.training.head import HyperParameters, build_model

IDENTITY = EncoderIdentity("use-multilingual-v3-cnn", "ab" * 32)
LABELS = ("Music", "Sports", "Gaming")


def random_head(seed: int = 0):
    """A head with random weights and non-trivial BatchNorm statistics (so folding is exercised)."""
    rng = np.random.default_rng(seed)
    model = build_model(len(LABELS), HyperParameters(hidden=16))
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if layer.name == "norm":
            gamma, beta, mean, var = (
                rng.normal(1, 0.3, 16),
                rng.normal(0, 0.5, 16),
                rng.normal(0.2, 0.1, 16),
                rng.uniform(0.1, 2, 16),
            )
            layer.set_weights([gamma, beta, mean, var])
        else:
            layer.set_weights([rng.normal(0, 0.2, w.shape) for w in weights])
    return model


def save(model, folder: Path, thresholds: tuple[float, ...] = (0.5, 0.4, 0.3)) -> dict:
    meta = {
        "labels": list(LABELS),
        "thresholds": list(thresholds),
        "prior": [0.5, 0.3, 0.2],
        "encoder": {"name": IDENTITY.name, "weights_sha256": IDENTITY.weights_sha256, "max_tokens": 128},
    }
    return write_artifact(folder, model, meta, ())


def test_numpy_predict_matches_keras(tmp_path: Path) -> None:
    model = random_head()
    meta = save(model, tmp_path / "m")
    classifier = load_classifier(tmp_path / "m", IDENTITY)
    x = np.random.default_rng(1).normal(size=(32, 512)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    expected = model.predict(x, verbose=0)
    got = sigmoid(classifier.logits(x))
    assert got.dtype == np.float32 and got.shape == (32, 3)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert classifier.version == meta["version"]
    assert classifier.labels == LABELS
    assert classifier.prior.sum() == pytest.approx(1.0)


def test_confidence_uses_the_calibration_or_falls_back_to_the_top_score(tmp_path: Path) -> None:
    save(random_head(), tmp_path / "m")
    logits = np.array([[2.0, 1.0, -1.0], [0.5, 0.4, 0.3]], dtype=np.float32)
    before = load_classifier(tmp_path / "m", IDENTITY)  # a head from before calibration
    np.testing.assert_allclose(before.confidence(logits), sigmoid(np.array([2.0, 0.5])), rtol=1e-6)
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["confidence"] = {"top_logit": 0.5, "margin": 2.0, "bias": -1.0}
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    calibrated = load_classifier(tmp_path / "m", IDENTITY)
    expected = sigmoid(np.array([0.5 * 2.0 + 2.0 * 1.0 - 1.0, 0.5 * 0.5 + 2.0 * 0.1 - 1.0]))
    np.testing.assert_allclose(calibrated.confidence(logits), expected, rtol=1e-5)


def test_refuses_another_encoder(tmp_path: Path) -> None:
    save(random_head(), tmp_path / "m")
    other = EncoderIdentity(IDENTITY.name, "cd" * 32)
    with pytest.raises(IncompatibleModelError, match="trained on encoder"):
        load_classifier(tmp_path / "m", other)


def test_unknown_embed_views_are_refused_at_load(tmp_path: Path) -> None:
    save(random_head(), tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["text"] = {"embed_views": ["title_tags", "thumbnail"]}
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(IncompatibleModelError, match="unknown embed views \\['thumbnail'\\]"):
        load_classifier(tmp_path / "m", IDENTITY)


def test_missing_model_json_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IncompatibleModelError, match="model.json"):
        load_classifier(tmp_path, IDENTITY)


def test_version_changes_with_weights_and_thresholds(tmp_path: Path) -> None:
    first = save(random_head(0), tmp_path / "a")["version"]
    second = save(random_head(1), tmp_path / "b")["version"]
    other_thresholds = save(random_head(0), tmp_path / "c", thresholds=(0.5, 0.4, 0.2))["version"]
    assert len({first, second, other_thresholds}) == 3 and first.startswith("head-")
    meta = json.loads((tmp_path / "a" / "model.json").read_text())
    assert meta["weights_file"] == "head.keras" and len(meta["weights_sha256"]) == 64


def test_categorize_keeps_labels_over_threshold_best_first() -> None:
    probabilities = np.array([[0.6, 0.7, 0.1], [0.2, 0.1, 0.25], [0.9, 0.1, 0.35]])
    thresholds = np.array([0.5, 0.5, 0.3], dtype=np.float32)
    rows = rank_labels(np.log(probabilities / (1 - probabilities)), LABELS, thresholds)
    assert [label for label, _ in rows[0]] == ["Sports", "Music"]
    assert [label for label, _ in rows[1]] == ["Gaming"]  # nothing passes: the top label alone
    assert [label for label, _ in rows[2]] == ["Music", "Gaming"]
    assert rows[0][0][1] == pytest.approx(0.7)


def test_categorize_puts_the_top_label_first_even_under_its_threshold() -> None:
    """Music (0.45) misses its 0.5 threshold and Gaming (0.35) passes its 0.3: Music is still the top label."""
    probabilities = np.array([[0.45, 0.1, 0.35]])
    rows = rank_labels(np.log(probabilities / (1 - probabilities)), LABELS, np.array([0.5, 0.5, 0.3], np.float32))
    assert [label for label, _ in rows[0]] == ["Music", "Gaming"]


def test_categorize_ranks_on_logits_where_probabilities_saturate() -> None:
    """float32 sigmoids of 20 and 25 are both 1.0: the order must come from the logits."""
    rows = rank_labels(np.array([[20.0, 25.0, -3.0]], dtype=np.float32), LABELS, np.full(3, 0.5, np.float32))
    assert [label for label, _ in rows[0]] == ["Sports", "Music"]
    assert [score for _, score in rows[0]] == [1.0, 1.0]  # reported as probabilities


def test_linear_classifier_folds_into_the_served_head(tmp_path: Path) -> None:
    """linear_weight blends a regularised linear classifier into the head: the numpy
    classifier's logits must be (1 - a) * MLP logits + a * linear logits, exactly."""
    from worker.training.head import fit_head
    from worker.training.linear import fit_linear, linear_logits

    rng = np.random.default_rng(3)
    centres = rng.normal(size=(3, 512))
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 120)]
    x = (y @ centres + rng.normal(0, 2.0, (120, 512))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    hp = HyperParameters(hidden=8, seeds=1, max_epochs=3, linear_weight=1.0, linear_l2=0.03)
    save(fit_head(x, y, x[:30], y[:30], hp).model, tmp_path / "linear")
    classifier = load_classifier(tmp_path / "linear", IDENTITY)
    kernel, bias = fit_linear(x, y, 0.03)
    logits = classifier.logits(x)
    np.testing.assert_allclose(logits, linear_logits(x, kernel, bias), atol=1e-3)
    assert np.mean(logits.argmax(1) == y.argmax(1)) > 0.9  # it learnt the clusters

    blended = fit_head(
        x, y, x[:30], y[:30], HyperParameters(hidden=8, seeds=1, max_epochs=3, linear_weight=0.5)
    ).model
    assert blended.get_layer("hidden").get_weights()[0].shape == (512, 8 + 2 * 3)


def test_label_prior_pulls_the_linear_head_toward_the_label_names() -> None:
    """With --label-prior s the linear part's L2 pulls it toward s x each label name's embedding:
    on data that says nothing, a text that is a label's name still scores that label, by about s."""
    from worker.training.head import fit_head
    from worker.training.linear import fit_linear, label_prior_weights

    rng = np.random.default_rng(8)
    x = rng.normal(size=(90, 512)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 90)]  # labels unrelated to x
    names = rng.normal(size=(3, 512)).astype(np.float32)
    names /= np.linalg.norm(names, axis=1, keepdims=True)
    free, _ = fit_linear(x, y, 0.03)
    pulled, _ = fit_linear(x, y, 0.03, label_prior_weights(names, 5.0))
    assert np.abs(names @ free).max() < 1.0
    scores = names @ pulled
    assert scores.argmax(1).tolist() == [0, 1, 2]
    assert np.diag(scores).min() > 4.0 and np.abs(scores - np.diag(np.diag(scores))).max() < 1.5

    with pytest.raises(ValueError, match="label names"):
        fit_head(x, y, None, None, HyperParameters(linear_weight=1.0, label_prior=5.0))
    with pytest.raises(ValueError, match="linear_weight"):  # no linear part for the prior to shape
        fit_head(x, y, x, y, HyperParameters(linear_weight=0.0, label_prior=5.0), label_embeddings=names)


def test_kernel_votes_fold_into_the_served_head(tmp_path: Path) -> None:
    """kernel_weight adds each training row's vote, weight * relu(cosine - threshold), to its
    labels' logits; a repeated row is one hidden unit whose vote counts every copy."""
    from worker.training.head import fit_head
    from worker.training.linear import fit_linear, linear_logits

    rng = np.random.default_rng(5)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 60)]
    x = rng.normal(size=(60, 512)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x, y = np.concatenate([x, x[:1], x[:1]]), np.concatenate([y, y[:1], y[:1]])  # row 0 three times
    hp = HyperParameters(seeds=1, linear_weight=1.0, kernel_weight=2.0, kernel_threshold=0.05)
    save(fit_head(x, y, None, None, hp).model, tmp_path / "kernel")
    classifier = load_classifier(tmp_path / "kernel", IDENTITY)
    assert classifier.hidden_kernel.shape == (512, 2 * 3 + 60)

    queries = x[:5] + rng.normal(0, 0.02, (5, 512)).astype(np.float32)
    votes = np.maximum(queries @ x.T - 0.05, 0) @ y
    expected = linear_logits(queries, *fit_linear(x, y, 0.03)) + 2.0 * votes
    np.testing.assert_allclose(classifier.logits(queries), expected, atol=1e-3)
    assert votes[0, y[0].argmax()] > 2.5  # row 0's three copies vote for its label


def test_a_refit_without_dev_trains_each_seed_for_its_given_epochs() -> None:
    from worker.training.head import fit_head

    rng = np.random.default_rng(4)
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 40)]
    x = rng.normal(size=(40, 512)).astype(np.float32)
    hp = HyperParameters(hidden=4, seeds=2, max_epochs=50, patience=2)
    early = fit_head(x, y, x[:10], y[:10], hp)
    assert len(early.epochs) == 2 and all(1 <= e <= 50 for e in early.epochs)
    assert fit_head(x, y, None, None, hp, epochs=(3, 5)).epochs == (3, 5)
    with pytest.raises(ValueError, match="epoch count"):
        fit_head(x, y, None, None, hp)
