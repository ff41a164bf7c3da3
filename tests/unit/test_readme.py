"""The README's settings table and commands stay in step with the code."""

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
