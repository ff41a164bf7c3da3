"""The README's settings table and commands stay in step with the code."""

import json
import shlex

from worker.cli import app
from worker.settings import REPO_ROOT, Settings

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


def test_the_starter_retraining_command_is_the_one_the_shipped_starter_records() -> None:
    command = README.split("--out models/starter", 1)[1].split("\npython", 1)[0].replace("\\\n", " ")
    options = shlex.split(command.split("```", 1)[0])
    meta = json.loads((REPO_ROOT / "models/starter/model.json").read_text())
    value = dict(zip(options, options[1:], strict=False))  # option -> the word after it
    assert int(value["--text-max-chars"]) == meta["text"]["max_chars"]
    assert int(value["--max-tokens"]) == meta["encoder"]["max_tokens"]
    assert value["--views"].split(",") == meta["text"]["training_views"]
    assert float(value["--linear-weight"]) == meta["hyper_parameters"]["linear_weight"]
    assert ("--refit" in options) == meta["training_data"]["refit_on_dev"]
