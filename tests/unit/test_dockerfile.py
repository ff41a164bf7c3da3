"""Lint the Dockerfile (no Docker engine here): sources, entrypoint, user, layer order, settings."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from worker.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions in order with their stage index; continuations joined, comments dropped."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, args = full.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(stage, keyword, args.strip()))
    return instructions


INSTRUCTIONS = parse(DOCKERFILE.read_text())
FINAL_STAGE = max(i.stage for i in INSTRUCTIONS)


def final(keyword: str) -> list[Instruction]:
    return [i for i in INSTRUCTIONS if i.stage == FINAL_STAGE and i.keyword == keyword]


def copy_sources(instruction: Instruction) -> list[str] | None:
    """Context sources of a COPY/ADD, or None when it copies from another stage."""
    parts = shlex.split(instruction.args)
    if any(p.startswith("--from=") for p in parts):
        return None
    paths = [p for p in parts if not p.startswith("--")]
    return paths[:-1]


def final_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in final("ENV"):
        for pair in shlex.split(instruction.args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exclusion, regex) per line, with Go filepath.Match semantics plus `**`."""
    patterns = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        glob = line.lstrip("!").strip("/")
        regex = re.escape(glob).replace(r"\*\*", "\0").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        patterns.append((not include, re.compile(regex.replace("\0", ".*") + "$")))
    return patterns


def is_ignored(relative: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for exclusion, pattern in dockerignore_patterns():
        if any(pattern.match(candidate) for candidate in candidates):
            ignored = exclusion
    return ignored


def test_every_copy_source_exists_and_is_not_dockerignored() -> None:
    sources = [s for i in INSTRUCTIONS if i.keyword in ("COPY", "ADD") for s in (copy_sources(i) or [])]
    assert sources, "no COPY from the build context"
    for source in sources:
        path = REPO / source
        assert path.exists(), f"COPY source {source} is not in the repository"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        kept = [f for f in files if "__pycache__" not in f.parts and f.suffix != ".pyc"]
        assert kept, f"COPY source {source} has no files"
        for file in kept:
            assert not is_ignored(file.relative_to(REPO).as_posix()), f"{file} is excluded by .dockerignore"


def test_dockerignore_keeps_the_context_small() -> None:
    assert is_ignored(".venv/bin/python")
    assert is_ignored(".cache/muse-savedmodel/saved_model.pb")
    assert is_ignored("worker/__pycache__/settings.cpython-311.pyc")
    assert not is_ignored("worker/settings.py")


def test_entrypoint_runs_the_worker_module() -> None:
    (entrypoint,) = final("ENTRYPOINT")
    argv = json.loads(entrypoint.args)  # exec form: signals reach Python directly
    assert argv[:3] == ["python", "-m", "worker"]
    assert (REPO / "worker" / "__main__.py").is_file()
    assert argv[3] in cli_commands()


def test_build_time_muse_export_is_what_the_image_serves() -> None:
    exports = [i for i in INSTRUCTIONS if i.keyword == "RUN" and "-m worker export-muse" in i.args]
    assert len(exports) == 1 and exports[0].stage != FINAL_STAGE
    assert "export-muse" in cli_commands()
    out_dir = shlex.split(exports[0].args)[-1]
    assert shlex.split(exports[0].args)[-2] == "--out"
    copies = [shlex.split(i.args) for i in final("COPY")]
    assert any(c[0].startswith("--from=") and c[1:] == [out_dir, out_dir] for c in copies)
    assert final_env()["WORKER_ENCODER_HANDLE"] == out_dir


def test_final_user_is_a_numeric_non_root_uid() -> None:
    users = final("USER")
    assert users, "the final stage must switch user"
    uid = users[-1].args.split(":")[0]
    # Kubernetes can only verify runAsNonRoot against a numeric uid.
    assert uid.isdigit() and int(uid) != 0
    last_user_index = INSTRUCTIONS.index(users[-1])
    assert all(i.keyword != "RUN" for i in INSTRUCTIONS[last_user_index:]), "RUN after USER needs root"


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    pip_installs = [
        n for n, i in enumerate(INSTRUCTIONS) if i.keyword == "RUN" and "pip install -r" in i.args
    ]
    source_copies = [
        n for n, i in enumerate(INSTRUCTIONS) if i.keyword == "COPY" and "worker/" in (copy_sources(i) or [])
    ]
    assert pip_installs and source_copies
    assert pip_installs[0] < source_copies[0]
    copied_before = {
        s for i in INSTRUCTIONS[: pip_installs[0]] if i.keyword == "COPY" for s in copy_sources(i) or []
    }
    assert copied_before == {"pyproject.toml", "constraints.txt"}


def test_dependencies_are_pinned_by_the_constraints_ci_tests() -> None:
    (install,) = [i for i in INSTRUCTIONS if i.keyword == "RUN" and "pip install -r" in i.args]
    assert "-c constraints.txt" in install.args
    makefile = (REPO / "Makefile").read_text()
    assert '-e ".[dev,train]" -c constraints.txt' in makefile, "make setup (CI) must install the same pins"


def test_read_only_root_filesystem_environment() -> None:
    env = final_env()
    assert env["HOME"] == "/tmp" and env["TMPDIR"] == "/tmp"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert all(env[k].startswith("/tmp") for k in ("XDG_CACHE_HOME", "TFHUB_CACHE_DIR"))


def test_metrics_port_is_exposed() -> None:
    default_port = Settings.model_fields["worker_metrics_port"].default
    assert [i.args for i in final("EXPOSE")] == [str(default_port)]
    assert final_env()["WORKER_METRICS_PORT"] == str(default_port)


def test_every_env_default_is_a_setting() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    for key in final_env():
        if key.startswith(("WORKER_", "KAFKA_", "REDIS_", "SCHEMA_REGISTRY_")):
            assert key in fields, f"{key} is not a setting"


@pytest.mark.parametrize("accelerator", ["cpu", "gpu"])
def test_the_requirements_step_reads_pyproject(accelerator: str) -> None:
    """Run the Dockerfile's own requirements one-liner against this repository's pyproject."""
    (step,) = [i for i in INSTRUCTIONS if i.keyword == "RUN" and "tomllib" in i.args]
    words = shlex.split(step.args.split("&&")[1].split(">")[0].replace('"$ACCELERATOR"', accelerator))
    code = words[words.index("-c") + 1]
    result = subprocess.run(
        [sys.executable, "-c", code, accelerator], cwd=REPO, capture_output=True, text=True, check=True
    )
    expected = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    if accelerator == "gpu":
        expected = [
            d.replace("tensorflow==", "tensorflow[and-cuda]==", 1) if d.startswith("tensorflow==") else d
            for d in expected
        ]
    assert result.stdout.split("\n")[:-1] == expected
    assert any(line.startswith("tensorflow[and-cuda]==") for line in result.stdout.splitlines()) == (
        accelerator == "gpu"
    )


def test_base_image_is_selectable() -> None:
    from_lines = [i.args for i in INSTRUCTIONS if i.keyword == "FROM"]
    assert from_lines[0].startswith("${BASE}") and from_lines[-1].startswith("${BASE}")
    assert INSTRUCTIONS[0].keyword == "ARG" and INSTRUCTIONS[0].args.startswith("BASE=python:3.11")


def cli_commands() -> set[str]:
    import typer.main

    from worker.cli import app

    return set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
