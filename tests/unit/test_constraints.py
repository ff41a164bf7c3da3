"""constraints.txt, the pins CI tests and the image installs, agrees with pyproject.toml and the venv."""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]


def pins() -> dict[str, Version]:
    pinned: dict[str, Version] = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, separator, pinned_version = line.partition("==")
            assert separator, f"constraints.txt: {line!r} is not an exact pin"
            pinned[canonicalize_name(name)] = Version(pinned_version)
    return pinned


def declared() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return [Requirement(r) for r in [*project["dependencies"], *(r for group in extras.values() for r in group)]]


def test_every_declared_dependency_is_pinned_inside_its_range() -> None:
    pinned = pins()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement.name} is in pyproject.toml but not in constraints.txt: run make lock"
        assert pinned[name] in requirement.specifier, (
            f"constraints.txt pins {requirement.name} {pinned[name]}, outside pyproject's {requirement.specifier}: "
            "run make lock"
        )


def test_the_environment_is_the_pinned_one() -> None:
    """make setup installs with -c constraints.txt: what runs the tests is what the lock says."""
    for name, pinned_version in pins().items():
        try:
            installed = Version(version(name))
        except PackageNotFoundError:  # pinned for an extra or a platform this venv does not install
            continue
        assert installed == pinned_version, f"{name} {installed} is installed, constraints.txt pins {pinned_version}"
