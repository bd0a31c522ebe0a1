"""Trim Atlassian's Jira Cloud OpenAPI document to what tests/sandbox/test_jira_openapi.py validates against.

The full document is 2.3 MB; the test needs only the paths the Jira stand-in serves and the schemas they
reach. Keeping every path a recorded request could match (e.g. both `issue/bulk` and `issue/{issueIdOrKey}`)
leaves openapi-core's path resolution exactly as with the full document. Reproduce with:

    python tests/data/jira-openapi/trim.py SOURCE/swagger-v3.v3.json tests/data/jira-openapi/swagger-v3.trimmed.json

The script refuses a source whose SHA-256 differs from the one SOURCES.md names, so the output is reproducible.
When the stand-in starts serving another path, add it to KEEP and run the script again (the test reports a
path the trimmed document lacks as a mismatch).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

SOURCE_SHA256 = "0c8ffa92915d5644246a16213118777ac783bb0f3d346bb73a42df594fe1e6a0"
KEEP = (
    "/rest/api/3/field",
    "/rest/api/3/issue",
    "/rest/api/3/issue/bulk",
    "/rest/api/3/issue/createmeta",
    "/rest/api/3/issue/createmeta/{projectIdOrKey}/issuetypes",
    "/rest/api/3/issue/createmeta/{projectIdOrKey}/issuetypes/{issueTypeId}",
    "/rest/api/3/issue/{issueIdOrKey}",
    "/rest/api/3/issue/{issueIdOrKey}/changelog",
    "/rest/api/3/issue/{issueIdOrKey}/comment",
    "/rest/api/3/issue/{issueIdOrKey}/properties",
    "/rest/api/3/issue/{issueIdOrKey}/properties/{propertyKey}",
    "/rest/api/3/issue/{issueIdOrKey}/remotelink",
    "/rest/api/3/issue/{issueIdOrKey}/transitions",
    "/rest/api/3/issuetype",
    "/rest/api/3/myself",
    "/rest/api/3/priority",
    "/rest/api/3/priority/{id}",
    "/rest/api/3/project",
    "/rest/api/3/project/{projectIdOrKey}",
    "/rest/api/3/project/{projectIdOrKey}/components",
    "/rest/api/3/project/{projectIdOrKey}/statuses",
    "/rest/api/3/resolution",
    "/rest/api/3/search",
    "/rest/api/3/search/jql",
    "/rest/api/3/serverInfo",
    "/rest/api/3/status",
)
PREFIX = "#/components/"


def refs(node: Any) -> set[str]:
    """Every local `$ref` target under node."""
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node)) if node else set()
    return set()


def trim(spec: dict[str, Any]) -> dict[str, Any]:
    """The document with only KEEP's paths and the components they reach (transitively)."""
    missing = [p for p in KEEP if p not in spec["paths"]]
    if missing:
        raise SystemExit(f"the source document lacks these paths: {missing}")
    paths = {p: spec["paths"][p] for p in KEEP}
    wanted: set[tuple[str, str]] = set()
    todo = refs(paths)
    while todo:
        ref = todo.pop()
        if not ref.startswith(PREFIX):
            raise SystemExit(f"unexpected $ref {ref!r}")
        kind, name = ref[len(PREFIX):].split("/", 1)
        if (kind, name) not in wanted:
            wanted.add((kind, name))
            todo |= refs(spec["components"][kind][name])
    components: dict[str, dict[str, Any]] = {
        kind: {n: spec["components"][kind][n] for n in sorted(spec["components"][kind]) if (kind, n) in wanted}
        for kind in spec["components"]
    }
    components["securitySchemes"] = spec["components"]["securitySchemes"]
    info = dict(spec["info"])
    info["description"] = f"{info['description']} (trimmed to {len(KEEP)} paths by tests/data/jira-openapi/trim.py)"
    return {"openapi": spec["openapi"], "info": info, "servers": spec["servers"], "paths": paths,
            "components": components}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    raw = Path(argv[1]).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SOURCE_SHA256:
        print(f"{argv[1]}: SHA-256 {digest}, expected {SOURCE_SHA256}", file=sys.stderr)
        return 1
    out = trim(json.loads(raw))
    Path(argv[2]).write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
