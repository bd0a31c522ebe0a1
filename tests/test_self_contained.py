"""A fresh clone runs its tests and benches alone: nothing reads outside the repository, and every data file the
tests read is in tests/data with its origin and licence in tests/data/SOURCES.md.

CI (.ci/run) proves the first point by running the suite in a temporary copy with nothing beside it; these
checks say which file is at fault before CI does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.paths import ASFF_DIR, DATA, JIRA_OPENAPI, OCSF_DIR

REPO = Path(__file__).resolve().parents[1]
OUTSIDE = [
    re.compile(r"\.\.[/\\]shared"),  # ../shared
    re.compile(r"""["']shared["']\s*/\s*["']data["']"""),  # "shared" / "data"
    re.compile(r"""["']\.\.["']\s*/\s*["']shared["']"""),  # ".." / "shared"
    re.compile(r"/work/"),  # an absolute path of the machine the data came from
    re.compile(r"parents\[\d\]\s*/\s*[\"']\.\.[\"']"),  # climbing out of the repository: parents[1] / ".."
]
CODE = ("*.py", "*.sh", "*.toml", "*.yaml", "*.yml", "*.cfg", "*.ini", "conftest.py")


def code_files() -> list[Path]:
    files = {path for root in ("tests", "bench") for pattern in CODE for path in (REPO / root).rglob(pattern)}
    this = Path(__file__).resolve()  # its patterns and examples would match themselves
    return sorted(p for p in files if "__pycache__" not in p.parts and p != this)


def test_no_test_or_bench_file_reads_outside_the_repository() -> None:
    files = code_files()
    assert len(files) > 40, "the scan found the test and bench modules"
    found = [f"{path.relative_to(REPO)}:{n}: {line.strip()}"
             for path in files
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if any(p.search(line) for p in OUTSIDE)]
    assert found == [], "read test data from tests/data (tests/paths.py), never from beside the repository"


def test_the_scan_catches_the_old_paths() -> None:
    """Guard against a vacuous scan: the ways tests used to reach ../shared are all caught."""
    old = [
        'ASFF = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "asff"',
        'SHARED = ROOT / ".." / "shared"',
        "open('../shared/data/ocsf/x.json')",
        'Path("/work/shared/data")',
    ]
    assert all(any(p.search(line) for p in OUTSIDE) for line in old)


def test_every_data_file_is_accounted_for() -> None:
    sources = (DATA / "SOURCES.md").read_text(encoding="utf-8")
    notices = (DATA / "NOTICES.md").read_text(encoding="utf-8")
    listed = [p for d in (ASFF_DIR, OCSF_DIR, JIRA_OPENAPI.parent) for p in sorted(d.iterdir())
              if p.name not in ("SOURCES.md", "FIELDS.md") and p.suffix != ".py"]
    assert len(listed) == 44 + 5 + 1
    missing = [p.name for p in listed if f"`{p.name}`" not in sources]
    assert missing == [], "name each file, its source, licence and changes in tests/data/SOURCES.md"
    for other in ("configs/", "hostile_payloads.json", "trim.py"):
        assert other in sources
    for holder in ("DefectDojo, Inc.", "Crux Stack", "Sumo Logic, Inc.", "Apache License"):
        assert holder in notices


def test_no_sample_under_a_licence_that_forbids_copying() -> None:
    """The Elastic License 2.0 samples are pointers only (tests/data/SOURCES.md); they never come in."""
    assert not [p for p in DATA.rglob("*") if p.name.startswith("elastic-")]


def test_the_trimmed_openapi_document_keeps_its_licence_and_says_it_was_trimmed() -> None:
    spec = json.loads(JIRA_OPENAPI.read_text(encoding="utf-8"))
    assert spec["info"]["license"]["name"] == "Apache 2.0"
    assert "trimmed" in spec["info"]["description"]
    assert "/rest/api/3/search/jql" in spec["paths"] and len(spec["paths"]) < 40


def test_ocsf_samples_are_findings() -> None:
    docs = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(OCSF_DIR.glob("*.json"))}
    assert len(docs) == 5
    for name, doc in docs.items():
        findings = doc["detail"]["findings"] if "detail" in doc else [doc]
        assert all(f["finding_info"]["uid"] and f["metadata"]["product"]["uid"] for f in findings), name


def test_the_package_never_carries_test_data() -> None:
    """Only sh2jira/ is packaged, and nothing in it is a copy of a file from tests/data."""
    data = {p.read_bytes() for p in DATA.rglob("*") if p.is_file()}
    shipped = [p for p in (REPO / "sh2jira").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert shipped and not [p for p in shipped if p.read_bytes() in data]
