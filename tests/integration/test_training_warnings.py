"""What `train` and `evaluate` say on stderr and carry on with: dev data in a group the head is not trained on,
a refit on SIB-200 dev sentences, and evaluation rows the worker would dead-letter instead of categorizing."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.integration.training_cli import FAST, FIXTURES, cli, region_rows
from worker.settings import DEFAULT_MODEL_DIR


def test_dev_data_in_a_group_the_training_data_lacks_is_warned_of_and_trained_on(tmp_path: Path) -> None:
    out = tmp_path / "m"
    data = ["--data", str(region_rows(tmp_path, "US")), "--dev", str(region_rows(tmp_path, "BR"))]
    result = CliRunner().invoke(cli(), ["train", *data, "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert "warning: dev data in BR, which the training data has no rows of (it has US): early stopping and the " \
           "thresholds are tuned on data in a group the head is not trained on" in result.stderr
    assert "BR scores measured later are not zero-shot" in result.stderr
    assert json.loads((out / "model.json").read_text())["training_data"]["groups"] == ["US"]


def test_a_refit_on_sib_200_dev_sentences_is_warned_of(tmp_path: Path) -> None:
    out, runner = tmp_path / "sib", CliRunner()
    result = runner.invoke(cli(), ["train", "--data", str(FIXTURES / "sib_small"), "--out", str(out), *FAST, "--refit"])
    assert result.exit_code == 0, result.output
    assert "warning: --refit folds the SIB-200 style dev split (sib_small) into the training rows" in result.stderr
    assert "every other language's dev score is inflated" in result.stderr
    assert "dev data in" not in result.stderr  # eng and fra dev: languages it trains on
    # what the warning says evaluate does: German dev is the translation of the dev sentences fitted on
    german = ["evaluate", "--model", str(out), "--data", str(FIXTURES / "sib_small" / "deu_Latn"), *FAST[:2]]
    left_out = runner.invoke(cli(), german)
    assert left_out.exit_code == 2 and "all left out as fitted on" in left_out.stderr
    inflated = runner.invoke(cli(), [*german, "--keep-fitted", "--json"])
    assert inflated.exit_code == 0, inflated.output


def test_evaluate_skips_and_counts_the_rows_the_worker_would_dead_letter(tmp_path: Path) -> None:
    """A row with no title, or with no text left after cleaning, is dead-lettered by the worker, never
    categorized: evaluate does not score it (n counts the rows scored) and says how many, why, and where."""
    path = region_rows(tmp_path, "BR")
    refused = [
        {"video_id": "links", "region": "BR", "title": "https://bit.ly/x", "tags": [], "category": "Music"},
        {"video_id": "untitled", "region": "BR", "title": "", "tags": ["futebol", "gol"], "category": "Sports"},
        {"video_id": "marks", "region": "FR", "title": "!!!", "description": "", "category": "Gaming"},
        {"video_id": "kept", "region": "FR", "title": "Le journal de 20 heures", "category": "News & Politics"},
    ]
    path.write_text(path.read_text(encoding="utf-8") + "".join(json.dumps(r) + "\n" for r in refused), "utf-8")
    args = ["evaluate", "--model", str(DEFAULT_MODEL_DIR), "--data", str(path), "--json", *FAST[:2]]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) == {"model_version", "groups", "mean_accuracy", "mean_macro_f1"}
    assert {group: scores["n"] for group, scores in summary["groups"].items()} == {"BR": 6, "FR": 1}
    assert "skipped 3 rows the worker would dead-letter instead of categorizing: empty-text 2 (BR 1, FR 1); " \
           "missing-field 1 (BR 1)" in result.stderr
