"""Logging: one event per line, as plain text or JSON, with finding id and issue key as fields.

`emit` is for what the command line itself says on stderr (a config problem, "cannot start: …", "cycle failed:
…"). In text mode it is the bare `sh2jira: …` line people read; in JSON mode it is one JSON object shaped like
every log record, so a log pipeline never meets a line it cannot parse.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

FIELDS = ("finding_id", "issue_key", "region")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")

_format = "text"


def _event(level: str, message: str, logger: str, created: float | None = None) -> dict[str, Any]:
    when = datetime.fromtimestamp(created, UTC) if created is not None else datetime.now(UTC)
    return {"time": when.isoformat(timespec="milliseconds"), "level": level.lower(), "logger": logger,
            "message": message}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = _event(record.levelname, record.getMessage(), record.name, record.created)
        for name in FIELDS:
            value = getattr(record, name, None)
            if value:
                event[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            event["error"] = record.exc_info[0].__name__
        return json.dumps(event, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{n}={getattr(record, n)}" for n in FIELDS if getattr(record, n, None))
        line = f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} {record.levelname:<7} {record.getMessage()}"
        return f"{line} [{extras}]" if extras else line


def setup(fmt: str = "text", level: str = "INFO") -> None:
    global _format
    _format = fmt
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("botocore", "urllib3", "boto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def is_json() -> bool:
    return _format == "json"


def emit(level: str, message: str, stream: Any = None, **fields: Any) -> None:
    """One line from the command line itself: `sh2jira: message` as text, or one JSON object with `fields`."""
    out = stream if stream is not None else sys.stderr
    if _format == "json":
        event = _event(level, message, "sh2jira.cli")
        event.update({k: v for k, v in fields.items() if v is not None})
        print(json.dumps(event, ensure_ascii=False), file=out, flush=True)
    else:
        print(f"sh2jira: {message}", file=out, flush=True)
