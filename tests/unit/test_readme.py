"""The README's settings table and commands stay in step with the code."""

import json
import shlex

import pytest

from worker.cli import app
from worker.settings import REPO_ROOT, Settings
from worker.training.head import HyperParameters

README = (REPO_ROOT / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in README]
    assert missing == []


def test_every_command_is_documented() -> None:
    names = [c.name for c in app.registered_commands]
    assert len(names) >= 7
    assert [n for n in names if f"`{n}" not in README] == []


def test_the_two_commands_come_first() -> None:
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert "make run" in first_block and "make test" in first_block


def readme_training_options(model: str) -> dict[str, str | None]:
    """The README's `train ... --out models/<model> ...` command: option -> its value (None for a flag)."""
    command = README.split(f"--out models/{model}", 1)[1].split("\npython", 1)[0].split("```", 1)[0]
    words = shlex.split(command.replace("\\\n", " "))
    return {w: (words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("--") else None)
            for i, w in enumerate(words) if w.startswith("--")}


@pytest.mark.parametrize("model", ["starter", "sib200"])
def test_the_retraining_commands_are_the_ones_the_shipped_models_record(model: str) -> None:
    options = readme_training_options(model)
    meta = json.loads((REPO_ROOT / f"models/{model}/model.json").read_text())
    hyper_parameters = meta["hyper_parameters"]
    given = {o[2:].replace("-", "_"): v for o, v in options.items() if o[2:].replace("-", "_") in hyper_parameters}
    assert given, "no hyper-parameter option found in the README command"
    for name, value in given.items():
        assert float(value) == hyper_parameters[name], name
    defaults = {k: v for k, v in HyperParameters().as_dict().items() if k not in given}
    # what the README leaves out is the default (a model trained before an option existed lacks its key)
    assert {k: hyper_parameters.get(k, v) for k, v in defaults.items()} == defaults
    assert int(options.get("--text-max-chars") or 512) == meta["text"]["max_chars"]
    assert (options.get("--views") or "").split(",") == (meta["text"]["training_views"] or [""])
    assert (options.get("--embed-views") or "").split(",") == (meta["text"].get("embed_views") or [""])
    assert ("--refit" in options) == meta["training_data"]["refit_on_dev"]
