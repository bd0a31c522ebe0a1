"""What-if patches for the bench's sh2jira process (`python -m bench perf --whatif NAME,...`): the fixes
proposed in bench/RESULTS.md, applied in the child process only, to measure their effect before they are made
in sh2jira itself. Nothing here is imported by sh2jira; nothing is patched unless asked for.

- `wiki`: wiki.jira_len / clean / escape with C-speed string methods and guarded regex scans. Same output:
  checked against the originals on ~750,000 strings (generated and real findings, and random markup soup).
- `render-once`: plan._field_hashes hashes the draft's description instead of rendering a second time for
  the timestamp-free copy (changes what the description hash covers; see RESULTS.md for the options).
- `jira-changed`: the closure search from Jira asks only for issues whose status category is done, standing in
  for `status CHANGED AFTER -Nm` (which the Jira stand-in does not parse yet): both return no issue after a
  backfill, where `updated >= -Nm` returns every issue the backfill created.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

PATCHES = ("wiki", "render-once", "jira-changed")


def apply(names: Sequence[str]) -> None:
    for name in names:
        if name not in PATCHES:
            raise ValueError(f"unknown what-if patch {name!r} (known: {', '.join(PATCHES)})")
        {"wiki": _fast_wiki, "render-once": _render_once, "jira-changed": _jira_changed}[name]()


def _fast_wiki() -> None:
    from sh2jira import wiki

    drop = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff" + "".join(sorted(wiki._INVISIBLE)) + "]")
    escapes = str.maketrans({**{c: "\\" + c for c in wiki.ESCAPABLE}, "\\": "\\" + wiki.WORD_JOINER})

    def jira_len(text: str) -> int:
        return len(text) if text.isascii() else len(text.encode("utf-16-le", "surrogatepass")) // 2

    def clean(text: str) -> str:
        return drop.sub("", wiki._NEWLINES.sub("\n", text))

    def joiner_positions(text: str) -> set[int]:
        positions: set[int] = set()
        if ":" in text:
            positions.update(m.start() for m in wiki._SCHEME_SEP.finditer(text))
            positions.update(m.end() for m in wiki._BARE_SCHEME.finditer(text))
        if "." in text:
            positions.update(m.end() for m in wiki._WWW.finditer(text))
            positions.update(m.end() for m in wiki._LINE_START.finditer(text))
        if "&" in text:
            positions.update(m.start() + 1 for m in wiki._ENTITY.finditer(text))
        if ":" in text or ";" in text:
            positions.update(m.start() + 1 for m in wiki._EMOTICON.finditer(text))
        return positions

    def escape(text: str) -> str:
        text = clean(text)
        cuts = sorted(p for p in joiner_positions(text) if p < len(text))
        parts, prev = [], 0
        for p in cuts:
            parts += [text[prev:p].translate(escapes), wiki.WORD_JOINER]
            prev = p
        parts.append(text[prev:].translate(escapes))
        return "".join(parts)

    wiki.jira_len, wiki.clean, wiki.escape = jira_len, clean, escape  # type: ignore[assignment]
    wiki._joiner_positions = joiner_positions


def _render_once() -> None:
    from sh2jira import plan, render

    def field_hashes(finding: Any, draft: Any) -> dict[str, str]:
        return {"summary": render.fingerprint({"v": draft.summary}),
                "description": render.fingerprint({"v": draft.description}),
                "priority": render.fingerprint({"v": draft.priority})}

    plan._field_hashes = field_hashes


def _jira_changed() -> None:
    from sh2jira import jira_sink
    from sh2jira.plan import MANAGED_LABEL

    original = jira_sink.JiraSink.search
    prefix = f"labels = {MANAGED_LABEL} AND updated >= -"

    def search(self: Any, jql: str, fields: Sequence[str] = ("labels", "status"), page_size: int = 100,
               expand: str = "", properties: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
        if jql.startswith(prefix):
            jql = jql.replace(" ORDER BY", " AND statusCategory = Done ORDER BY", 1)
        return original(self, jql, fields, page_size, expand, properties)

    jira_sink.JiraSink.search = search  # type: ignore[method-assign]
