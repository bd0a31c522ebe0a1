"""config.example.yaml shows every key the config schema has, and says what the code really does."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from sh2jira.config import config_json_schema, load_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.yaml"
KeyPath = tuple[str, ...]


def schema_keys(schema: dict[str, Any]) -> set[KeyPath]:
    """Every key path the schema names; `[]` stands for any list item. A free-form map (custom `fields`,
    `resource_tags`: keys chosen by the admin) counts as its own key only: its entries are examples, not keys."""
    defs = schema.get("$defs", {})
    found: set[KeyPath] = set()

    def walk(node: dict[str, Any], path: KeyPath) -> None:
        if "$ref" in node:
            walk(defs[node["$ref"].rsplit("/", 1)[-1]], path)
            return
        for combinator in ("anyOf", "allOf", "oneOf"):
            for alternative in node.get(combinator, []):
                walk(alternative, path)
        if isinstance(node.get("items"), dict):
            walk(node["items"], path + ("[]",))
        for name, sub in node.get("properties", {}).items():
            found.add(path + (name,))
            walk(sub, path + (name,))

    walk(schema, ())
    return found


_COMMENTED_KEY = re.compile(r"^(\s*)# ?(\s*(?:- )?[A-Za-z_][\w-]*:(?:\s|$).*|- \{.*)$")


def uncommented(text: str) -> str:
    """The example with its commented-out keys (optional blocks such as `accounts` and `token`) put back."""
    out = []
    for line in text.splitlines():
        m = _COMMENTED_KEY.match(line)
        out.append(m.group(1) + m.group(2) if m else line)
    return "\n".join(out)


def shown_keys(data: Any, path: KeyPath = ()) -> set[KeyPath]:
    found: set[KeyPath] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            found.add(path + (str(key),))
            found |= shown_keys(value, path + (str(key),))
    elif isinstance(data, list):
        for item in data:
            found |= shown_keys(item, path + ("[]",))
    return found


def test_the_example_shows_every_key_of_the_schema_nested_keys_too() -> None:
    shown = shown_keys(yaml.safe_load(uncommented(EXAMPLE.read_text())))
    missing = sorted(".".join(p) for p in schema_keys(config_json_schema()) - shown)
    assert missing == [], f"config.example.yaml lacks: {', '.join(missing)}"


def test_the_walk_would_notice_a_missing_key() -> None:
    text = EXAMPLE.read_text()
    for key in ("  quota_share:", "  max_requests_per_second:", "  #   aws_region:", "        title:"):
        assert key in text
        broken = "\n".join(line for line in text.splitlines() if not line.startswith(key))
        shown = shown_keys(yaml.safe_load(uncommented(broken)))
        assert schema_keys(config_json_schema()) - shown, key


def test_the_schema_walk_reaches_nested_and_list_keys_and_stops_at_free_form_maps() -> None:
    keys = schema_keys(config_json_schema())
    assert ("securityhub", "pacing") in keys and ("jira", "token", "aws_secret_key") in keys
    assert ("securityhub", "accounts", "[]", "external_id") in keys
    assert ("rulebook", "rules", "[]", "match", "resource_tags") in keys
    assert ("rulebook", "priorities", "INFORMATIONAL") in keys
    assert not any(p[:3] == ("rulebook", "defaults", "fields") and len(p) > 3 for p in keys)


def test_the_example_loads_as_written_and_with_its_optional_blocks_uncommented_it_is_still_valid_keys() -> None:
    load_config(EXAMPLE)
    assert yaml.safe_load(uncommented(EXAMPLE.read_text()))["jira"]["token"]["aws_region"] == "eu-west-1"


def test_the_docs_no_longer_say_severity_is_filtered_server_side() -> None:
    example = EXAMPLE.read_text()
    readme = (ROOT / "README.md").read_text()
    assert "informational findings are never read" not in example
    assert "applied by sh2jira, not by Security Hub" in example
    assert "RecordState and severity are filtered locally" in readme
    deploy = (ROOT / "deploy" / "README.md").read_text()
    assert "needs the `TokenSource`" not in deploy and "jira.token: {file:" in deploy
