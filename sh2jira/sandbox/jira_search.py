"""Issue search of the Jira stand-in: Cloud's /search/jql (nextPageToken, eventually consistent, no total),
Data Center's /search (startAt/total), and Cloud's removed /search (410 Gone).

Matching runs on the lagging index (see JiraStore.searchable); the issues returned are read fresh, as a
real search hydrates its hits from the database.

A query's hits are kept while the index has had no write, so paging a large result does not re-run the JQL over
every issue for every page. On Cloud the nextPageToken also carries the time of the query's first page, and later
pages read relative dates (`updated >= -10m`) as of then: every page of one paging answers the same query, and such
a query's hits are kept too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .jira_http import Ctx, Reply, Route
from .jira_store import JiraFailure

REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
UNBOUNDED = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
CLOUD_ID_ONLY_MAX, CLOUD_MAX, DC_MAX = 5000, 100, 1000


def default_compiler() -> Callable[..., Any]:
    """The JQL engine (sh2jira.sandbox.jql), imported when a search first needs it."""
    from .jql import compile_jql

    return compile_jql


def _params(ctx: Ctx) -> dict[str, Any]:
    """GET query parameters or the POST body, in one shape (list parameters as lists)."""
    if ctx.request.method == "POST":
        body = ctx.body_dict()
        return {k: v for k, v in body.items() if v is not None}
    args = ctx.request.args
    out: dict[str, Any] = {k: args.get(k) for k in args}
    for name in ("fields", "properties", "reconcileIssues"):
        if name in args:
            out[name] = ctx.arg_list(name)
    return out


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [p for v in items for p in str(v).split(",") if p]


def _hits(ctx: Ctx, jql: str, reconcile: list[str], validate: bool = True,
          at: datetime | None = None) -> tuple[list[str], list[str]]:
    """Ids of the issues matching `jql` on the index, in the query's order, and any warnings.

    Values that do not exist on the site (a project, a status, an issue key) are Jira's 400s, or
    warnings when the caller turned validation off (Data Center's validateQuery=false). `at`: the time relative
    dates are read at (the first page's, from a Cloud token), else now."""
    compile_jql = ctx.jql or default_compiler()
    try:
        query = compile_jql(jql, now=at or ctx.store.now())
    except ValueError as exc:  # JqlError is a ValueError carrying Jira's messages
        raise JiraFailure(400, list(getattr(exc, "messages", None) or [str(exc)])) from None
    check = getattr(query, "check_values", None)
    problems: list[str] = list(check(ctx.store.known_values())) if check else []
    if problems and validate:
        raise JiraFailure(400, problems)
    # Paging through a large result re-runs the same query page after page: its hits are kept while the index has
    # had no write and there is no index lag; with a relative date only when pinned to a time (`at`).
    index = ctx.store.index
    relative = bool(_RELATIVE_DATE.search(jql))
    key = (jql, index.writes, at.isoformat() if relative and at else None)
    cacheable = not reconcile and not ctx.realism.lag and (at is not None or not relative)
    cached = index.hit_cache
    if cacheable and cached is not None and cached[0] == key:
        return list(cached[1]), problems
    docs = [doc for doc in ctx.store.searchable(ctx.realism.lag, reconcile) if query.matches(doc)]
    hits = [str(doc["id"]) for doc in query.sort(docs)]
    if cacheable:
        index.hit_cache = (key, hits)
    return list(hits), problems


_RELATIVE_DATE = re.compile(r"-\s*\d+\s*[wdhm]|now\(|start[A-Z]|end[A-Z]|current", re.IGNORECASE)


def _token(offset: int, jql: str, at: datetime) -> str:
    raw = json.dumps({"o": offset, "q": hashlib.sha256(jql.encode()).hexdigest()[:16], "t": at.isoformat()})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _offset(token: str | None, jql: str) -> tuple[int, datetime | None]:
    """Where a token resumes, and the time its query's first page was answered at."""
    if not token:
        return 0, None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["q"] == hashlib.sha256(jql.encode()).hexdigest()[:16]:
            return int(data["o"]), datetime.fromisoformat(data["t"])
    except (ValueError, KeyError, TypeError):
        pass
    raise JiraFailure(400, ["The provided next page token is invalid or expired."])


def _is_unbounded(jql: str) -> bool:
    text = jql.strip().lower()
    return not text or text.startswith("order by")


def _render(ctx: Ctx, ids: list[str], p: dict[str, Any], default_fields: str) -> list[dict[str, Any]]:
    render = ctx.render
    fields = _as_list(p.get("fields")) or None
    expand = ",".join(_as_list(p.get("expand")))
    props = _as_list(p.get("properties"))
    with ctx.store.lock:
        return [
            render.issue(
                ctx.store.issue(i),
                fields,
                expand,
                props,
                default=default_fields,
                id_only_ok=default_fields == "id",
            )
            for i in ids
        ]


def search_jql(ctx: Ctx) -> Reply:
    """Cloud: GET/POST /search/jql. Pages by nextPageToken, reports isLast, never a total."""
    p = _params(ctx)
    jql = str(p.get("jql") or "")
    if _is_unbounded(jql):
        raise JiraFailure(400, [UNBOUNDED])
    fields = _as_list(p.get("fields"))
    cap = CLOUD_ID_ONLY_MAX if set(fields) <= {"id", "key"} else CLOUD_MAX
    limit = min(max(ctx.int_arg(p, "maxResults", 50), 0), cap)
    offset, at = _offset(p.get("nextPageToken"), jql)
    at = at or ctx.store.now()
    ids, _ = _hits(ctx, jql, _as_list(p.get("reconcileIssues")), at=at)
    page = ids[offset : offset + limit]
    body: dict[str, Any] = {"issues": _render(ctx, page, p, "id")}
    is_last = offset + len(page) >= len(ids)
    if not is_last:
        body["nextPageToken"] = _token(offset + len(page), jql, at)
    body["isLast"] = is_last
    return Reply(200, body)


def search_removed(ctx: Ctx) -> Reply:
    raise JiraFailure(410, [REMOVED])


def search_dc(ctx: Ctx) -> Reply:
    """Data Center: GET/POST /search with startAt, maxResults (≤ 1000) and total."""
    p = _params(ctx)
    start = max(ctx.int_arg(p, "startAt", 0), 0)
    limit = min(max(ctx.int_arg(p, "maxResults", 50), 0), DC_MAX)
    strict = str(p.get("validateQuery", "strict")).lower() in ("strict", "true")
    ids, warnings = _hits(ctx, str(p.get("jql") or ""), [], validate=strict)
    page = ids[start : start + limit]
    body = {
        "expand": "schema,names",
        "startAt": start,
        "maxResults": limit,
        "total": len(ids),
        "issues": _render(ctx, page, p, "*navigable"),
    }
    if warnings:
        body["warningMessages"] = warnings
    return Reply(200, body)


CLOUD = frozenset({"cloud"})
DC = frozenset({"datacenter"})
ROUTES: list[Route] = [
    Route("GET", "/rest/api/{v}/search/jql", search_jql, flavours=CLOUD),
    Route("POST", "/rest/api/{v}/search/jql", search_jql, flavours=CLOUD),
    Route("GET", "/rest/api/{v}/search", search_removed, flavours=CLOUD),
    Route("POST", "/rest/api/{v}/search", search_removed, flavours=CLOUD),
    Route("GET", "/rest/api/{v}/search", search_dc, flavours=DC),
    Route("POST", "/rest/api/{v}/search", search_dc, flavours=DC),
]
