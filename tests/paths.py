"""Where the tests' data lives: inside the repository (tests/data/), so a fresh clone runs the suite alone.

Licences and origins of every file are in tests/data/SOURCES.md. Nothing here is installed with the package.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
ASFF_DIR = DATA / "asff"
OCSF_DIR = DATA / "ocsf"
JIRA_OPENAPI = DATA / "jira-openapi" / "swagger-v3.trimmed.json"
