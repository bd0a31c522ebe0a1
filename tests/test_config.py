"""Config loading: every problem named by file, line and key path; the JSON Schema agrees with the models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from sh2jira.config import (
    Config,
    ConfigError,
    Problem,
    config_json_schema,
    load_config,
    rulebook_json_schema,
)
from sh2jira.yamlsource import YamlError, load_yaml, parse_yaml

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "configs"
BAD = sorted((CORPUS / "bad").glob("*.yaml"))
GOOD = sorted((CORPUS / "good").glob("*.yaml"))
EXAMPLE = ROOT / "config.example.yaml"

MINIMAL = """\
securityhub:
  regions: [us-east-1]
jira:
  url: https://example.atlassian.net
"""


def _header(path: Path, key: str) -> list[str]:
    prefix = f"# {key}: "
    return [line[len(prefix):] for line in path.read_text().splitlines() if line.startswith(prefix)]


def _schema_errors(data: Any, schema: dict[str, Any] | None = None) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema or config_json_schema(),
                                                format_checker=jsonschema.FormatChecker())
    return [e.message for e in validator.iter_errors(data)]


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_the_corpus_is_big_enough() -> None:
    assert len(BAD) >= 12 and len(GOOD) >= 3
    assert all(_header(p, "expect") for p in BAD), "every bad config says what it expects"


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_config_is_rejected_with_file_line_and_key(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(path.parent)  # so messages name the file as given: "<name>:<line>: ..."
    with pytest.raises(ConfigError) as caught:
        load_config(path.name)
    reported = str(caught.value).splitlines()
    expected = [f"{path.name}:{e}" for e in _header(path, "expect")]
    assert sorted(reported) == sorted(expected)
    assert len(caught.value.problems) == len(expected)


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_config_is_rejected_by_the_json_schema_too(path: Path) -> None:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return  # not YAML at all: no editor would accept it either
    errors = _schema_errors(data)
    if _header(path, "schema-blind"):
        assert errors == [], "marked schema-blind but the schema catches it: drop the marker"
    else:
        assert errors, f"the JSON Schema accepts {path.name}"


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_good_config_is_accepted_by_load_config_and_schema(path: Path) -> None:
    assert isinstance(load_config(path), Config)
    assert _schema_errors(yaml.safe_load(path.read_text())) == []


def test_example_config_loads_and_validates() -> None:
    cfg = load_config(EXAMPLE)
    assert _schema_errors(yaml.safe_load(EXAMPLE.read_text())) == []
    assert cfg.securityhub.regions == ["us-east-1", "eu-west-1"]
    assert cfg.jira.token_env == "SH2JIRA_JIRA_TOKEN"
    assert cfg.ledger.path == ROOT / "sh2jira.sqlite3"  # relative to the config file, not the cwd
    assert [r.name for r in cfg.rulebook.rules][:2] == ["passed-controls", "prod-data-exposure"]


def test_defaults_fill_what_is_left_out(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "c.yaml", MINIMAL + "rulebook:\n  defaults: {project: SEC}\n"))
    sh, jira = cfg.securityhub, cfg.jira
    assert (sh.aggregation, sh.first_run_lookback_days, sh.overlap_minutes) == (False, 30, 10)
    assert sh.page_size == 100
    assert (sh.link_back, sh.retry_mode, sh.max_attempts, sh.endpoint_url) == ("full", "standard", 8, None)
    assert (jira.flavour, jira.user, jira.timeout_seconds, jira.bulk_size) == ("auto", "", 30.0, 50)
    assert (jira.verify_tls, jira.remote_links) == (True, False)
    assert cfg.run.interval_seconds == 300
    assert cfg.ledger.path == tmp_path.resolve() / "sh2jira.sqlite3"
    rb = cfg.rulebook
    assert rb.priorities.model_dump() == {"CRITICAL": "Highest", "HIGH": "High", "MEDIUM": "Medium",
                                          "LOW": "Low", "INFORMATIONAL": "Lowest"}
    assert (rb.unmatched, rb.control_findings, rb.rules) == ("ticket", "by-finding", [])
    assert rb.defaults.issue_type == "Task"


def test_ledger_path_is_relative_to_the_config_folder(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "etc").mkdir()
    text = MINIMAL + "ledger: {path: data/l.sqlite3}\nrulebook: {defaults: {project: S1}}\n"
    _write(tmp_path / "etc", "c.yaml", text)
    monkeypatch.chdir(tmp_path)
    assert load_config("etc/c.yaml").ledger.path == tmp_path.resolve() / "etc" / "data" / "l.sqlite3"


def test_config_is_immutable(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "c.yaml", MINIMAL + "rulebook: {defaults: {project: SEC}}\n"))
    with pytest.raises(ValueError, match="frozen"):
        cfg.jira.url = "https://evil.example"  # type: ignore[misc]


def test_every_problem_is_reported_at_once_in_line_order(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "c.yaml", """\
securityhub:
  regions: [us-east-1]
  page_size: 500
jira:
  url: https://example.atlassian.net
  bulk_size: 0
rulebook:
  defaults:
    project: SEC
    labels: [a b]
""")
    with pytest.raises(ConfigError) as caught:
        load_config("c.yaml")
    assert str(caught.value).splitlines() == [
        "c.yaml:3: securityhub.page_size: must be <= 100, got 500",
        "c.yaml:6: jira.bulk_size: must be >= 1, got 0",
        "c.yaml:10: rulebook.defaults.labels[0]: 'a b' is not a valid Jira label "
        "(labels cannot contain spaces)",
    ]
    first = Problem("c.yaml", 3, "securityhub.page_size", "must be <= 100, got 500")
    assert caught.value.problems[0] == first


def test_unknown_key_without_a_close_match_lists_the_allowed_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.yaml", MINIMAL + "rulebook:\n  defaults: {project: SEC}\n  routing: {}\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:7: rulebook\.routing: unknown key \(allowed here: "
                       r"control_findings, defaults, filters, min_age, priorities, rules, sla, unmatched\)"):
        load_config(path)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read: No such file or directory"):
        load_config(tmp_path / "nope.yaml")


# --- a rulebook in its own file -------------------------------------------------------------------

RULES = """\
defaults:
  project: SEC
rules:
  - name: critical
    match: {severity: [CRITICAL]}
    route: {priority: Highest}
"""


def test_rulebook_in_a_separate_file_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    _write(tmp_path / "rules", "main.yaml", RULES)
    cfg = load_config(_write(tmp_path, "c.yaml", MINIMAL + "rulebook: rules/main.yaml\n"))
    assert [r.name for r in cfg.rulebook.rules] == ["critical"]
    assert _schema_errors(yaml.safe_load(RULES), rulebook_json_schema()) == []
    assert _schema_errors(yaml.safe_load((tmp_path / "c.yaml").read_text())) == []


def test_errors_in_a_rulebook_file_name_that_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rules = RULES.replace("CRITICAL]", "CRITICAL, SEVERE]") + "  - name: x\n    when: {}\n"
    _write(tmp_path, "rules.yaml", rules)
    _write(tmp_path, "c.yaml", MINIMAL + "  timeout_seconds: -1\nrulebook: rules.yaml\n")
    with pytest.raises(ConfigError) as caught:
        load_config("c.yaml")
    assert str(caught.value).splitlines() == [
        "c.yaml:5: jira.timeout_seconds: must be > 0, got -1",
        "rules.yaml:5: rulebook.rules[0].match.severity[1]: 'SEVERE' is not one of CRITICAL, HIGH, MEDIUM, "
        "LOW, INFORMATIONAL",
        "rules.yaml:8: rulebook.rules[1].when: unknown key (allowed here: action, group_by, match, min_age, name, "
        "route, sla)",
    ]


def test_a_rulebook_file_that_is_not_a_mapping_is_blamed_where_its_content_starts(tmp_path: Path) -> None:
    _write(tmp_path, "rules.yaml", "# my rules\n- name: a\n")
    with pytest.raises(ConfigError,
                       match=r"rules\.yaml:2: rulebook: must be a mapping \(key: value\), got a list"):
        load_config(_write(tmp_path, "c.yaml", MINIMAL + "rulebook: rules.yaml\n"))


def test_a_missing_rulebook_file_is_blamed_on_the_config_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"c\.yaml:5: rulebook: rulebook file 'gone\.yaml': cannot read: "
                                          r"No such file or directory"):
        load_config(_write(tmp_path, "c.yaml", MINIMAL + "rulebook: gone.yaml\n"))


def test_a_yaml_syntax_error_in_the_rulebook_file_names_file_line_and_column(tmp_path: Path) -> None:
    _write(tmp_path, "rules.yaml", "defaults:\n  project: SEC\nrules: [\n")
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, "c.yaml", MINIMAL + "rulebook: rules.yaml\n"))
    (problem,) = caught.value.problems
    assert (Path(problem.file).name, problem.line, problem.column) == ("rules.yaml", 4, 1)
    assert problem.message.startswith("YAML syntax error: ")


# --- the JSON Schema ------------------------------------------------------------------------------

def test_schema_is_generated_from_the_models_with_descriptions() -> None:
    schema = config_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == {"securityhub", "jira", "ledger", "run", "closure", "reconcile", "events",
                                        "rulebook"}
    assert [alt.get("type") for alt in schema["properties"]["rulebook"]["anyOf"]] == [None, "string"]
    sh = schema["$defs"]["SecurityHubConfig"]
    assert sh["additionalProperties"] is False
    assert sh["properties"]["page_size"]["maximum"] == 100
    assert "home region" in sh["properties"]["regions"]["description"]
    assert "first match wins" in schema["$defs"]["Rulebook"]["properties"]["rules"]["description"]


def test_schema_and_models_agree_on_a_tricky_case() -> None:
    # A regex that compiles in Python passes both; one that does not fails both.
    base = yaml.safe_load(MINIMAL)
    for title, ok in (("(?i)public", True), ("[unclosed", False)):
        data = {**base, "rulebook": {"defaults": {"project": "SEC"},
                                     "rules": [{"name": "r", "match": {"title": title}}]}}
        assert (_schema_errors(data) == []) is ok
        assert (_loads(data)) is ok


def _loads(data: dict[str, Any]) -> bool:
    try:
        Config.model_validate(data)
    except ValueError:
        return False
    return True


# --- yamlsource -----------------------------------------------------------------------------------

def test_yamlsource_records_the_line_of_every_key_and_item() -> None:
    doc = parse_yaml("a:\n  b:\n    - x\n    - y: 1\n      z: [1, 2]\n", "f.yaml")
    assert doc.data == {"a": {"b": ["x", {"y": 1, "z": [1, 2]}]}}
    assert doc.line_of(("a", "b", 1, "z")) == 5
    assert doc.line_of(("a", "b", 0)) == 3
    assert doc.line_of(("a", "b", 1, "missing")) == 4  # the nearest ancestor present
    assert doc.line_of(()) == 1


def test_yamlsource_matches_numeric_keys_reported_as_text() -> None:
    doc = parse_yaml("tags:\n  x: 1\n  2024: year\n", "f.yaml")
    assert doc.line_of(("tags", "2024")) == 3


@pytest.mark.parametrize(("text", "message"), [
    ("a: 1\nb: 2\na: 3\n", "f.yaml:3:1: duplicate key 'a' (first given on line 1)"),
    ("a: &x [*x]\n", "f.yaml:1:4: recursive alias: a value cannot contain itself"),
    ("? [k]\n: v\n", "f.yaml:1:3: a key must be a plain value, not a list or mapping"),
    ("a: !!python/object:os.system x\n", "f.yaml:1:4: YAML error: could not determine a constructor"),
    ("a:\n\tb: 1\n", "f.yaml:2:1: YAML syntax error: "),
])
def test_yamlsource_rejects_what_would_silently_mislead(text: str, message: str) -> None:
    with pytest.raises(YamlError) as caught:
        parse_yaml(text, "f.yaml")
    assert str(caught.value).startswith(message)


def test_yamlsource_resolves_merge_keys() -> None:
    doc = parse_yaml("base: &b {p: 1, q: 2}\nuse:\n  <<: *b\n  q: 3\n", "f.yaml")
    assert doc.data["use"] == {"p": 1, "q": 3}
    assert doc.line_of(("use", "q")) == 4


def test_yamlsource_refuses_non_utf8(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes("a: caf\xe9\n".encode("latin-1"))
    with pytest.raises(YamlError, match="not UTF-8"):
        load_yaml(tmp_path / "latin1.yaml")


def test_yamlsource_merge_into_an_aliased_mapping_keeps_the_override() -> None:
    doc = parse_yaml("a: &a {x: 1, y: 1}\nb: &b\n  <<: *a\n  x: 2\nc: *b\n", "f.yaml")
    assert doc.data["b"] == doc.data["c"] == {"x": 2, "y": 1}
