"""Packaging: the licence is declared the modern way, one constraints file pins every install, the dev extra holds
only what tests and CI use, and CI runs the README's test command in an isolated copy."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
CI = (REPO / ".ci" / "run").read_text(encoding="utf-8")
CI_TOOLS = ("ruff", "mypy")  # run as commands by .ci/run, never imported
# Needed by a module the tests import, which does not declare it: moto's server mode runs on flask.
NEEDED_BY = {"flask": "moto.server", "flask-cors": "moto.server"}


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def requirements(group: str | None = None) -> list[Requirement]:
    project = pyproject()["project"]
    raw = project["dependencies"] if group is None else project["optional-dependencies"][group]
    return [Requirement(r) for r in raw]


def pins() -> dict[str, str]:
    """constraints.txt as name → version; every line must be an exact pin."""
    out: dict[str, str] = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            found = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", line.strip())
            assert found, f"constraints.txt: {line!r} is not an exact pin"
            out[canonicalize_name(found.group(1))] = found.group(2)
    return out


def test_licence_is_an_spdx_expression_with_its_file() -> None:
    project = pyproject()["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    (backend,) = [Requirement(r) for r in pyproject()["build-system"]["requires"]]
    assert backend.name == "setuptools" and "76" not in backend.specifier and "77" in backend.specifier


def test_constraints_pin_every_requirement_within_its_range() -> None:
    pinned = pins()
    assert canonicalize_name("sh2jira") not in pinned
    for req in requirements() + requirements("dev") + [Requirement(r) for r in pyproject()["build-system"]["requires"]]:
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is not in constraints.txt (regenerate it with .ci/lock)"
        assert pinned[name] in req.specifier, f"constraints.txt pins {req.name}=={pinned[name]}, outside {req}"
    assert "pip" in pinned


def test_ci_and_the_image_install_with_the_constraints() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    for where, text in ((".ci/run", CI), ("Dockerfile", dockerfile)):
        installs = [line for line in text.splitlines() if re.search(r"pip install\b", line)]
        assert installs, where
        assert all("-c constraints.txt" in line for line in installs), f"{where}: an install without the constraints"
        assert "PIP_CONSTRAINT=" in text, f"{where}: the build backend is not pinned"


def _imported_under(*roots: str) -> set[str]:
    """Module names imported by the Python files under the given folders, dotted ones with each parent."""
    found: set[str] = set()
    for root in roots:
        for path in (REPO / root).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for dotted in re.findall(r"^\s*(?:from|import)\s+([A-Za-z_][\w.]*)", text, re.M):
                parts = dotted.split(".")
                found |= {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
    return found


def test_the_dev_extra_holds_only_what_tests_and_ci_use() -> None:
    modules_of: dict[str, set[str]] = {}
    for module, dists in metadata.packages_distributions().items():
        for dist in dists:
            modules_of.setdefault(canonicalize_name(dist), set()).add(module)
    in_tests = _imported_under("tests")
    typed = _imported_under(*pyproject()["tool"]["mypy"]["packages"])  # what mypy checks, in CI
    unused = []
    for req in requirements("dev"):
        name = canonicalize_name(req.name)
        modules = modules_of.get(name, set())
        if name in NEEDED_BY:
            used = NEEDED_BY[name] in in_tests
        elif name in CI_TOOLS:
            used = re.search(rf"^{name}\b", CI, re.M) is not None
        elif name.startswith("types-"):  # stubs: used when mypy checks code that imports the stubbed module
            used = any(m.removesuffix("-stubs") in typed for m in modules)
        else:
            used = bool(modules & in_tests)
        if not used:
            unused.append(req.name)
    assert unused == [], "drop these from [project.optional-dependencies].dev, or use them"


def test_ci_runs_the_readme_test_command_in_an_isolated_copy() -> None:
    assert "python -m pytest -q" in (REPO / "README.md").read_text(encoding="utf-8")
    lines = [line.strip() for line in CI.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert "set -euo pipefail" in lines, "every failing step, pytest's exit 5 included, fails the run"
    assert lines[-1] == "python -m pytest -q", "the README's command, last, with nothing swallowing its exit code"
    assert any(line.startswith('tmp="$(mktemp -d)"') for line in lines)
    assert any(re.match(r'git clone --quiet "\$src" "\$repo"', line) for line in lines)
    assert any(line.startswith('cd "$repo"') for line in lines)
    assert "ruff check ." in lines and "mypy" in lines
