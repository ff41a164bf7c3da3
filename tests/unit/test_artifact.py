"""Writing a model folder: `--out` replaces a model folder (keeping what else it held) and nothing else."""

from pathlib import Path

import pytest

from tests.unit.test_classify import random_head, save
from worker.training.artifact import OutDirRefused, check_out_dir


def test_a_folder_of_models_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    models = tmp_path / "models"
    save(random_head(), models / "starter")
    with pytest.raises(OutDirRefused, match="no model.json"):
        save(random_head(), models)
    assert (models / "starter" / "model.json").exists()


def test_the_link_a_worker_watches_is_refused(tmp_path: Path) -> None:
    save(random_head(), tmp_path / "v1")
    (tmp_path / "current").symlink_to(tmp_path / "v1")
    with pytest.raises(OutDirRefused, match="symbolic link"):
        check_out_dir(tmp_path / "current")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutDirRefused, match="a file"):
        check_out_dir(tmp_path / "file")


def test_a_model_folder_is_replaced_keeping_its_other_files_and_folders(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    first = save(random_head(), folder)
    (folder / "ATTRIBUTION.md").write_text("SIB-200, CC BY-SA 4.0")
    (folder / "report").mkdir()
    (folder / "report" / "report.md").write_text("# report")
    check_out_dir(folder)
    check_out_dir(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    check_out_dir(tmp_path / "empty")
    second = save(random_head(seed=1), folder)
    assert second["weights_sha256"] != first["weights_sha256"]
    assert (folder / "ATTRIBUTION.md").read_text() == "SIB-200, CC BY-SA 4.0"
    assert (folder / "report" / "report.md").read_text() == "# report"
