"""Train a real head end to end on the committed fixtures, evaluate it, and check the starter model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.integration.training_cli import FAST, FIXTURES, cli, region_rows
from worker.classify import IncompatibleModelError, load_classifier, rank_labels, sigmoid
from worker.encoders.base import muse_identity
from worker.encoders.reference import ReferenceEncoder
from worker.settings import DEFAULT_MODEL_DIR
from worker.text import build_text
from worker.training.data import read_videos
from worker.training.splits import few_shot_sample


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    out = folder / "videos"
    result = CliRunner().invoke(
        cli(), ["train", "--data", str(region_rows(folder)), "--out", str(out), "--dev-fraction", "0.25", *FAST]
    )
    assert result.exit_code == 0, result.output
    return out


def test_artifact_has_everything_the_worker_needs(trained: Path) -> None:
    meta = json.loads((trained / "model.json").read_text())
    assert (trained / "head.keras").is_file()
    assert meta["labels"] == ["Gaming", "Music", "News & Politics", "Sports"]
    assert len(meta["thresholds"]) == 4 and sum(meta["prior"]) == pytest.approx(1.0, abs=1e-4)
    assert meta["encoder"]["weights_sha256"] == muse_identity().weights_sha256
    assert len(meta["training_data"]["fingerprint"]) == 64 and meta["hyper_parameters"]["seeds"] == 1
    assert meta["version"].startswith("head-") and "dev" in meta["metrics"]
    assert meta["confidence"] is None or set(meta["confidence"]) == {"top_logit", "margin", "bias"}


def evaluate_fixture(model: Path, *options: str):  # noqa: ANN201 - click's Result
    """`evaluate` on the small video fixture with the reference encoder, plus `options`."""
    args = ["evaluate", "--model", str(model), "--data", str(FIXTURES / "videos_small.jsonl"), "--encoder", "reference"]
    return CliRunner().invoke(cli(), [*args, *options])


def test_evaluate_json_shape_and_quality(trained: Path) -> None:
    result = evaluate_fixture(trained, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) == {"model_version", "groups", "mean_accuracy", "mean_macro_f1"}
    assert set(summary["groups"]) == {"US", "FR", "BR"}
    assert set(summary["groups"]["BR"]) == {"n", "accuracy", "macro_f1", "majority"}
    # the 16 US videos it was fitted on are left out; its 6 US dev videos and all of FR and BR are scored
    assert {g: v["n"] for g, v in summary["groups"].items()} == {"US": 6, "FR": 10, "BR": 6}
    assert "left out 16 rows the head was fitted on (US 16)" in result.stderr
    assert summary["groups"]["BR"]["accuracy"] >= 0.66  # unseen Portuguese, four obvious topics
    assert summary["groups"]["FR"]["accuracy"] >= 0.66  # unseen French
    assert summary["model_version"] == json.loads((trained / "model.json").read_text())["version"]


def test_report_writes_markdown_and_chart(trained: Path, tmp_path: Path) -> None:
    result = evaluate_fixture(trained, "--report", str(tmp_path))
    assert result.exit_code == 0, result.output
    report = (tmp_path / "report.md").read_text()
    assert "| BR | 6 |" in report and "Confusion matrix" in report
    assert "| confidence | calibration error |" in report  # the served confidence, per group
    # the means, and the 22 rows scored pooled with their interval, in the report and the printed table
    assert "(unweighted means over 3 groups)" in report and "Pooled over all 22 rows: accuracy " in report
    assert "mean accuracy " in result.stdout and "pooled over all 22 rows: accuracy " in result.stdout
    assert "95% interval" in result.stdout.splitlines()[-1]
    assert (tmp_path / "accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_fails_a_candidate_worse_beyond_chance_and_passes_an_equal_one(trained: Path, tmp_path: Path) -> None:
    """A head that knows two of the four categories loses every Gaming and News row to the full head."""
    narrow = tmp_path / "narrow"
    fit = CliRunner().invoke(cli(), ["train", "--data", str(region_rows(tmp_path)), "--out", str(narrow),
                                     "--labels", "Music,Sports", "--dev-fraction", "0.25", *FAST])
    assert fit.exit_code == 0, fit.output
    data = ["--data", str(FIXTURES / "videos_small.jsonl"), "--encoder", "reference", "--json"]

    worse = CliRunner().invoke(cli(), ["compare", "--model", str(narrow), "--baseline", str(trained), *data])
    assert worse.exit_code == 1, worse.output
    verdict = json.loads(worse.stdout.strip().splitlines()[-1])
    assert verdict["candidate"] == json.loads((narrow / "model.json").read_text())["version"]
    assert set(verdict["groups"]) == {"BR", "FR", "US", "(all)"}
    pooled = verdict["groups"]["(all)"]
    assert pooled["n"] == 22 and pooled["losses"] >= 8 and pooled["p_worse"] < 0.01  # rows neither was fitted on
    assert pooled["candidate_macro_f1"] < pooled["baseline_macro_f1"] and pooled["p_worse_macro_f1"] < 0.001
    assert "(all)" in verdict["worse"] and verdict["worse_on"]["(all)"] == ["accuracy", "macro_f1"]

    better = CliRunner().invoke(cli(), ["compare", "--model", str(trained), "--baseline", str(narrow), *data])
    assert better.exit_code == 0 and json.loads(better.stdout.strip().splitlines()[-1])["worse"] == []
    same = CliRunner().invoke(cli(), ["compare", "--model", str(trained), "--baseline", str(trained), *data[:-1]])
    assert same.exit_code == 0 and "candidate not worse beyond chance" in same.stdout


def test_refuses_a_head_trained_on_another_encoder(trained: Path, tmp_path: Path) -> None:
    meta = json.loads((trained / "model.json").read_text())
    meta["encoder"]["weights_sha256"] = "0" * 64
    (tmp_path / "model.json").write_text(json.dumps(meta))
    (tmp_path / "head.keras").write_bytes((trained / "head.keras").read_bytes())
    with pytest.raises(IncompatibleModelError, match="retrain the head"):
        load_classifier(tmp_path, muse_identity())
    result = CliRunner().invoke(
        cli(),
        [
            "evaluate",
            "--model",
            str(tmp_path),
            "--data",
            str(FIXTURES / "videos_small.jsonl"),
            "--encoder",
            "reference",
        ],
    )
    assert result.exit_code == 2 and "retrain the head" in result.output  # one line, no traceback


def test_sib_folder_trains_and_reports_per_language(tmp_path: Path) -> None:
    out = tmp_path / "sib"
    runner = CliRunner()
    trained = runner.invoke(cli(), ["train", "--data", str(FIXTURES / "sib_small"), "--out", str(out), *FAST])
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(
        cli(),
        [
            "evaluate",
            "--model",
            str(out),
            "--data",
            str(FIXTURES / "sib_small"),
            "--json",
            "--encoder",
            "reference",
        ],
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary["groups"]) == {"eng_Latn", "fra_Latn", "deu_Latn"}
    assert summary["groups"]["deu_Latn"]["accuracy"] >= 0.66
    assert json.loads((out / "model.json").read_text())["training_data"]["groups"] == ["eng_Latn", "fra_Latn"]
    assert "eng_Latn, fra_Latn: the head was trained on rows of these" in result.stderr
    languages = [str(FIXTURES / "sib_small" / lang) for lang in ("deu_Latn", "fra_Latn")]
    one_option = runner.invoke(cli(), ["evaluate", "--model", str(out), "--data", *languages, "--json", *FAST[:2]])
    assert one_option.exit_code == 0, one_option.output
    assert set(json.loads(one_option.stdout.strip().splitlines()[-1])["groups"]) == {"deu_Latn", "fra_Latn"}
    assert one_option.stderr.startswith("fra_Latn: the head was trained on rows of these")


def test_views_linear_head_and_text_budgets_are_recorded_and_used(tmp_path: Path) -> None:
    out = tmp_path / "linear"
    runner = CliRunner()
    options = [
        "--views",
        "title_tags,title",
        "--linear-weight",
        "1",
        "--text-max-chars",
        "300",
        "--max-tokens",
        "96",
        "--embed-views",
        "title_tags",
        "--label-prior",
        "5",
    ]
    data = ["--data", str(FIXTURES / "videos_small.jsonl")]
    trained = runner.invoke(
        cli(), ["train", "--data", str(region_rows(tmp_path)), "--out", str(out), "--dev-fraction", "0.25",
                *FAST, *options]
    )
    assert trained.exit_code == 0, trained.output
    meta = json.loads((out / "model.json").read_text(encoding="utf-8"))
    assert meta["text"]["max_chars"] == 300 and meta["text"]["training_views"] == ["title_tags", "title"]
    assert meta["encoder"]["max_tokens"] == 96 and meta["hyper_parameters"]["linear_weight"] == 1.0
    classifier = load_classifier(out, muse_identity())
    assert (classifier.text_max_chars, classifier.max_tokens) == (300, 96)
    assert meta["text"]["embed_views"] == ["title_tags"] and classifier.embed_views == ("title_tags",)
    assert classifier.hidden_kernel.shape[1] == 2 * len(classifier.labels)  # linear only: 2 units per label
    assert meta["hyper_parameters"]["label_prior"] == 5.0
    # each label's linear weights lean toward its name's embedding (cosine 0.2-0.4 without --label-prior)
    names = ReferenceEncoder(max_tokens=96).encode(list(classifier.labels))
    weights = classifier.hidden_kernel[:, : len(classifier.labels)]  # the linear units [w, -w]: w
    assert np.min(np.sum(names.T * weights, axis=0) / np.linalg.norm(weights, axis=0)) > 0.5
    result = runner.invoke(
        cli(), ["evaluate", "--model", str(out), *data, "--json", "--encoder", "reference"]
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["mean_accuracy"] > max(g["majority"] for g in summary["groups"].values())


def test_refit_adds_the_dev_rows_to_the_shipped_fit(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "refit"
    data = ["--data", str(region_rows(tmp_path)), "--dev-fraction", "0.25"]
    result = CliRunner().invoke(cli(), ["train", *data, "--out", str(out), *FAST, "--refit"])
    assert result.exit_code == 0, result.output
    first, refit = (json.loads((d / "model.json").read_text())["training_data"] for d in (trained, out))
    assert (first["refit_on_dev"], refit["refit_on_dev"]) == (False, True)
    assert refit["n_train"] == first["n_train"] + first["n_dev"] and refit["n_dev"] == first["n_dev"]
    assert refit["dev_fingerprint"] == first["dev_fingerprint"] and refit["fingerprint"] != first["fingerprint"]
    assert len(refit["mlp_epochs"]) == 1 and 1 <= refit["mlp_epochs"][0] <= 60
    summary = evaluate_fixture(out, "--json")
    scores = json.loads(summary.stdout.strip().splitlines()[-1])
    assert "left out 22 rows the head was fitted on (US 22)" in summary.stderr  # its dev rows too, now
    assert set(scores["groups"]) == {"FR", "BR"}
    assert scores["mean_accuracy"] > max(g["majority"] for g in scores["groups"].values())


def test_few_shot_examples_count_as_weight_rows_each_and_are_not_evaluated(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "shots"
    shots = ["--few-shot-data", str(region_rows(tmp_path, "BR")), "--few-shot", "1", "--few-shot-weight", "3"]
    result = CliRunner().invoke(
        cli(), ["train", "--data", str(region_rows(tmp_path)), "--out", str(out), "--dev-fraction", "0.25",
                *FAST, *shots]
    )
    assert result.exit_code == 0, result.output
    base, weighted = (json.loads((d / "model.json").read_text())["training_data"] for d in (trained, out))
    assert weighted["few_shot"] == {"k": 1, "weight": 3, "sources": ["BR.jsonl"], "n": 4}
    assert weighted["n_train"] == base["n_train"] + 3 * 4
    # the 4 Brazilian shots came from the file evaluated next: they are left out, the other 2 are scored
    evaluated = evaluate_fixture(out, "--json")
    assert "left out 20 rows the head was fitted on (BR 4, US 16)" in evaluated.stderr
    assert json.loads(evaluated.stdout.strip().splitlines()[-1])["groups"]["BR"]["n"] == 2


def test_few_shot_examples_bring_their_training_views(tmp_path: Path) -> None:
    data = str(FIXTURES / "videos_small.jsonl")
    linear = ["--data", data, "--dev-fraction", "0.25", "--views", "title_tags", "--linear-weight", "1", *FAST[:2]]
    shots = ["--few-shot-data", data, "--few-shot", "1", "--few-shot-weight", "2"]
    runner, counts = CliRunner(), []
    for name, extra in (("without", []), ("with", shots)):
        result = runner.invoke(cli(), ["train", "--out", str(tmp_path / name), *linear, *extra])
        assert result.exit_code == 0, result.output
        counts.append(json.loads((tmp_path / name / "model.json").read_text())["training_data"]["n_train"])
    sample, _ = few_shot_sample(read_videos(Path(data), views=("title_tags",)), 1, seed=13)
    rows_per_shot = [1 + len(ex.views) for ex in sample]
    assert max(rows_per_shot) == 2  # the fixture has shots whose title + tags differs from the full text
    assert counts[1] - counts[0] == 2 * sum(rows_per_shot)


def test_starter_model_predicts_obvious_multilingual_texts() -> None:
    classifier = load_classifier(DEFAULT_MODEL_DIR, muse_identity())
    chars = classifier.text_max_chars  # the budgets the model was trained with
    texts = [
        build_text(
            "Melhores momentos: Flamengo 3 x 1 Palmeiras, gols do campeonato", ["futebol", "gol"], "", chars
        ),
        build_text("Videoclip oficial - nueva canción del álbum", ["música", "canción"], "", chars),
        build_text("Minecraft Überleben Folge 5: wir bauen eine Burg", ["minecraft", "gameplay"], "", chars),
    ]
    embeddings = ReferenceEncoder(max_tokens=classifier.max_tokens).encode(texts)
    top = [row[0][0] for row in rank_labels(classifier.logits(embeddings), classifier.labels, classifier.thresholds)]
    assert top == ["Sports", "Music", "Gaming"]
    probabilities = sigmoid(classifier.logits(embeddings))
    assert np.all((probabilities >= 0) & (probabilities <= 1))
