"""Options, data and folders the training commands refuse: one line naming what and where, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.integration.training_cli import FAST, FIXTURES, cli
from worker.settings import DEFAULT_MODEL_DIR


def test_bad_view_name_is_refused(tmp_path: Path) -> None:
    data = ["--data", str(FIXTURES / "videos_small.jsonl")]
    result = CliRunner().invoke(cli(), ["train", *data, "--out", str(tmp_path / "m"), "--views", "thumbnail"])
    assert result.exit_code != 0 and "thumbnail" in result.output


def test_a_label_prior_without_a_linear_part_is_refused(tmp_path: Path) -> None:
    data = ["--data", str(FIXTURES / "videos_small.jsonl")]
    result = CliRunner().invoke(cli(), ["train", *data, "--out", str(tmp_path / "m"), "--label-prior", "5"])
    assert result.exit_code != 0 and "--linear-weight" in result.output
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--few-shot", "5"], "--few-shot-data"),
        (["--few-shot-data", str(FIXTURES / "videos_small.jsonl")], "--few-shot K"),
        (["--few-shot", "-1", "--few-shot-data", str(FIXTURES / "videos_small.jsonl")], "'--few-shot'"),
    ],
)
def test_few_shot_options_that_would_be_ignored_are_refused(tmp_path: Path, options: list[str], named: str) -> None:
    data = ["--data", str(FIXTURES / "videos_small.jsonl")]
    result = CliRunner().invoke(cli(), ["train", *data, "--out", str(tmp_path / "m"), *options])
    assert result.exit_code != 0 and named in result.output
    assert not (tmp_path / "m").exists()


def test_data_and_folders_that_cannot_be_used_are_one_line_errors(tmp_path: Path) -> None:
    trained = DEFAULT_MODEL_DIR
    empty = tmp_path / "deu_Latn" / "test.tsv"
    empty.parent.mkdir()
    empty.write_text("index_id\tcategory\ttext\n", encoding="utf-8")
    relabelled = tmp_path / "other.jsonl"
    relabelled.write_text('{"video_id": "a", "title": "Gol", "category": "Weather"}\n', encoding="utf-8")
    models = tmp_path / "models"
    (models / "starter").mkdir(parents=True)
    (models / "starter" / "model.json").write_text("{}", encoding="utf-8")
    for args, message in (
        (["evaluate", "--model", str(trained), "--data", str(tmp_path / "deu_Latn")], "no labelled rows"),
        (["evaluate", "--model", str(trained), "--data", str(relabelled)], "none of the gold labels"),
        (["train", "--data", str(FIXTURES / "videos_small.jsonl"), "--out", str(models), *FAST], "not a model folder"),
    ):
        result = CliRunner().invoke(cli(), args)
        assert result.exit_code == 2 and message in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback
    assert (models / "starter" / "model.json").exists()  # refused before anything was replaced
