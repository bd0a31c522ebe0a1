"""A Security Hub (CSPM, ASFF) stand-in: a WSGI app that unmodified boto3 clients talk to over HTTP.

Implemented operations: BatchImportFindings, GetFindings, BatchUpdateFindings and the finding aggregator
operations (Create/Get/List/Update/DeleteFindingAggregator); every other operation of the model answers 501.
Findings are stored per account and region (region from the SigV4 scope, account from the access key).
GetFindings answers from a cached order per query and BatchUpdateFindings looks identifiers up by key
(sh_index.py), so 100,000+ findings page quickly; `indexed=False` filters and sorts everything for every page (the
reference the cache is checked against). `keep_events=False` counts the "Findings - Imported" events instead of
keeping a copy of the finding per write (a large bench reads none of them).
Test controls live both on the app object (`reset`, `findings`, `state`, `calls`, `set_throttling`,
`inject_fault`, `inject_unprocessed`, `set_hub_enabled`, `load`, `tamper`, `events`) and as JSON under
`/_sandbox/`. Security Hub is enabled everywhere unless `set_hub_enabled(False, account, region)` says
otherwise; there every operation answers as the real service does in an account/region that never enabled it:
401 InvalidAccessException "Account <id> is not subscribed to AWS Security Hub".

    server = serve(SecurityHubApp())            # sh2jira.sandbox.server
    boto3.client("securityhub", endpoint_url=server.url, region_name="us-east-1",
                 aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x")
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from werkzeug.wrappers import Request, Response

from sh2jira.sandbox import sh_model
from sh2jira.sandbox.sh_control import THROTTLE_CODE, CallStats, Faults, Throttle
from sh2jira.sandbox.sh_errors import ServiceError, invalid_input
from sh2jira.sandbox.sh_filters import DEFAULT_SORT, compile_filters, resolve_sort_field, sort_values
from sh2jira.sandbox.sh_index import QueryIndex, reads_of
from sh2jira.sandbox.sh_paging import decode_token, encode_token, page, query_digest
from sh2jira.sandbox.sh_scope import Accounts, Aggregation, Caller, identify, region_scope
from sh2jira.sandbox.sh_store import Key, StoredFinding, apply_update, import_finding
from sh2jira.sandbox.sh_v2 import V2Findings
from sh2jira.sandbox.sh_v2_filters import validation
from sh2jira.sandbox.sh_validate import format_timestamp, validate_request

MAX_UPDATE_IDENTIFIERS = 100
DEFAULT_ACCOUNT = "123456789012"
Handler = Callable[[Caller, dict[str, Any]], dict[str, Any]]


class SecurityHubApp:
    """The stand-in. All keyword arguments are optional; see the module docstring for the controls."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] | None = None,
                 access_keys: Mapping[str, str] | None = None, default_account: str = DEFAULT_ACCOUNT,
                 administrators: Mapping[str, Iterable[str]] | None = None,
                 aggregation: Aggregation | None = None, throttling: bool = False,
                 quotas: Mapping[str, tuple[float, float]] | None = None, throttle_code: str = THROTTLE_CODE,
                 default_region: str = "us-east-1", indexed: bool = True, keep_events: bool = True) -> None:
        self._now = now or (lambda: datetime.now(UTC))
        self._access_keys = dict(access_keys) if access_keys is not None else None
        self._default_account = default_account
        self._accounts = Accounts(administrators)
        self._initial_aggregation = aggregation
        self._aggregation = aggregation
        self._default_region = default_region
        self._lock = threading.RLock()
        self._stores: dict[tuple[str, str], dict[Key, StoredFinding]] = {}
        self.calls = CallStats()
        self.events: list[dict[str, Any]] = []
        self.events_emitted = 0
        self.keep_events = keep_events
        self.indexed = indexed
        self.index = QueryIndex()  # GetFindings' cached query orders (sh_index.py)
        self._faults = Faults()
        self._disabled: set[tuple[str, str]] = set()  # (account or "*", region or "*"): Security Hub not enabled
        self._throttle = Throttle(clock, quotas, enabled=throttling, code=throttle_code)
        self._handlers: dict[str, Handler] = {
            "BatchImportFindings": self._batch_import, "GetFindings": self._get_findings,
            "BatchUpdateFindings": self._batch_update, "CreateFindingAggregator": self._create_aggregator,
            "GetFindingAggregator": self._get_aggregator, "ListFindingAggregators": self._list_aggregators,
            "UpdateFindingAggregator": self._update_aggregator,
            "DeleteFindingAggregator": self._delete_aggregator,
            "GetFindingsV2": self._get_findings_v2, "BatchUpdateFindingsV2": self._batch_update_v2,
        }
        self.v2 = V2Findings(self._now, self.events.append)  # the new Security Hub's OCSF findings (sh_v2.py)

    # ---- Python controls ---------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget all findings, calls, events, faults and buckets; restore the configured aggregator."""
        with self._lock:
            self._stores.clear()
            self.events.clear()
            self.index.clear()
            self.v2.reset()
            self._aggregation = self._initial_aggregation
            self._disabled.clear()
        self.calls.reset()
        self._faults.reset()
        self._throttle.reset()

    def findings(self, account: str | None = None, region: str | None = None) -> list[dict[str, Any]]:
        """Copies of the stored findings, optionally of one account and/or region."""
        with self._lock:
            return [copy.deepcopy(sf.doc) for (acct, reg), store in self._stores.items()
                    if account in (None, acct) and region in (None, reg) for sf in store.values()]

    def state(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """All findings as {account: {region: [finding, ...]}}."""
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        with self._lock:
            for (acct, reg), store in self._stores.items():
                out.setdefault(acct, {})[reg] = [copy.deepcopy(sf.doc) for sf in store.values()]
        return out

    def set_throttling(self, enabled: bool) -> None:
        self._throttle.enabled = enabled

    def inject_fault(self, operation: str, status: int = 500, code: str | None = None,
                     message: str | None = None, count: int = 1, *, account: str | None = None,
                     region: str | None = None, after: int = 0) -> None:
        """The next `count` calls of `operation` answer this error (code defaults by status); only calls of
        `account` / in `region` when given, and only after `after` of them went through."""
        self._faults.inject(operation, status, code, message, count, account=account, region=region, after=after)

    def set_hub_enabled(self, enabled: bool, account: str | None = None, region: str | None = None) -> None:
        """Security Hub on or off in an account and region (None: every account / every region)."""
        key = (account or "*", region or "*")
        with self._lock:
            if enabled:
                self._disabled.discard(key)
            else:
                self._disabled.add(key)

    def _check_enabled(self, caller: Caller) -> None:
        with self._lock:
            off = {(caller.account, caller.region), (caller.account, "*"), ("*", caller.region), ("*", "*")}
            if off & self._disabled:
                raise ServiceError("InvalidAccessException",
                                   f"Account {caller.account} is not subscribed to AWS Security Hub", 401)

    def inject_unprocessed(self, code: str = "ConcurrentUpdateError", ids: Iterable[str] | None = None,
                           count: int = 1, message: str | None = None) -> None:
        """The next `count` BatchUpdateFindings report these finding ids (all when None) as unprocessed."""
        self._faults.inject_unprocessed(code, ids, count, message)

    def load(self, findings: Iterable[Any], account: str | None = None,
             region: str | None = None) -> dict[str, Any]:
        """Import findings directly (no quota, no batch limit); same validation and rules as the API."""
        result: dict[str, Any] = {"FailedCount": 0, "SuccessCount": 0, "FailedFindings": []}
        for raw in findings:
            where = region or (raw.get("Region") if isinstance(raw, dict) else None) or self._default_region
            self._merge_results(result, self._import_many([raw], where, account))
        return result

    def tamper(self, finding_id: str, mutate: Callable[[dict[str, Any]], None],
               product_arn: str | None = None) -> int:
        """Change stored findings in place, bypassing validation (to hand consumers surprising data).
        Returns how many findings `mutate` was applied to; KeyError if none has this Id."""
        with self._lock:
            matches = [sf for store in self._stores.values() for sf in store.values()
                       if sf.doc["Id"] == finding_id and product_arn in (None, sf.doc["ProductArn"])]
            if not matches:
                raise KeyError(f"no stored finding with Id {finding_id!r}")
            self.index.clear()
            for sf in matches:
                mutate(sf.doc)
            return len(matches)

    @property
    def aggregation(self) -> Aggregation | None:
        return self._aggregation

    def set_aggregation(self, aggregation: Aggregation | None) -> None:
        with self._lock:
            self._aggregation = aggregation
            self.index.clear()

    # ---- WSGI --------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith("/_sandbox/"):
            response = self._control(request)
        else:
            response = self._service(request, environ)
        return response(environ, start_response)

    def _service(self, request: Request, environ: dict[str, Any]) -> Response:
        try:
            caller = identify(request.headers.get("Authorization"), self._access_keys, self._default_account)
            raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(request.path)
            raw_path = raw_uri.split("?")[0]
            matched = sh_model.match_route(request.method, raw_path)
            if matched is None:
                raise ServiceError("UnknownOperationException",
                                   f"No operation at {request.method} {raw_path}", 404)
            name, labels = matched
            self.calls.record(name, caller.region)
            self._check_enabled(caller)
            fault = self._faults.take(name, caller.account, caller.region)
            if fault is not None:
                self.calls.mark_faulted(name)
                raise fault
            try:
                self._throttle.check(caller.account, caller.region, name)
            except ServiceError:
                self.calls.mark_throttled(name)
                raise
            handler = self._handlers.get(name)
            if handler is None:
                raise ServiceError("NotImplementedException",
                                   f"The Security Hub sandbox does not implement {name}", 501)
            params = sh_model.extract_input(sh_model.operation(name), labels, dict(request.args.items()),
                                            dict(request.headers.items()), request.get_data())
            result = handler(caller, params)
        except ServiceError as err:
            return Response(err.body(), status=err.status, headers=err.headers() + self._request_id())
        return Response(json.dumps(result), status=200,
                        headers=[("Content-Type", "application/json"), *self._request_id()])

    @staticmethod
    def _request_id() -> list[tuple[str, str]]:
        return [("x-amzn-RequestId", str(uuid.uuid4()))]

    def _validated(self, name: str, params: dict[str, Any], shallow: frozenset[str] = frozenset()) -> None:
        problems = validate_request(sh_model.operation(name), params, shallow)
        if problems:
            raise invalid_input("; ".join(problems))

    # ---- findings ----------------------------------------------------------------------------------------

    def _import_many(self, findings: list[Any], region: str, account: str | None) -> dict[str, Any]:
        result: dict[str, Any] = {"FailedCount": 0, "SuccessCount": 0, "FailedFindings": []}
        now = format_timestamp(self._now())
        with self._lock:
            self.index.clear()
            for raw in findings:
                owner = account or (raw.get("AwsAccountId") if isinstance(raw, dict) else None) or ""
                store = self._stores.get((str(owner), region), {})
                outcome = import_finding(store, raw, account=str(owner), region=region, now=now)
                if not outcome.ok:
                    result["FailedCount"] += 1
                    result["FailedFindings"].append({"Id": outcome.finding_id or "unknown",
                                                     "ErrorCode": outcome.error_code,
                                                     "ErrorMessage": outcome.message})
                    continue
                self._stores.setdefault((str(owner), region), store)
                result["SuccessCount"] += 1
                if outcome.changed and outcome.stored is not None:
                    self._emit(outcome.stored)
        return result

    @staticmethod
    def _merge_results(total: dict[str, Any], part: dict[str, Any]) -> None:
        total["FailedCount"] += part["FailedCount"]
        total["SuccessCount"] += part["SuccessCount"]
        total["FailedFindings"].extend(part["FailedFindings"])

    def _emit(self, stored: StoredFinding) -> None:
        """Record the "Security Hub Findings - Imported" event the real service sends to EventBridge."""
        self.events_emitted += 1
        if not self.keep_events:
            return
        self.events.append({
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "Security Hub Findings - Imported",
            "source": "aws.securityhub", "account": stored.account, "time": format_timestamp(self._now()),
            "region": stored.region, "resources": [f"{stored.doc['ProductArn']}/{stored.doc['Id']}"],
            "detail": {"findings": [copy.deepcopy(stored.doc)]},
        })

    def _reachable_stores(self, caller: Caller) -> list[dict[Key, StoredFinding]]:
        """The account+region stores the caller can read, in a fixed order (a finding is keyed once per store)."""
        visible = self._accounts.visible_to(caller.account)
        in_scope = region_scope(self._aggregation, caller.region)
        return [store for (acct, reg), store in self._stores.items() if visible(acct) and in_scope(reg)]

    def _reachable(self, caller: Caller) -> list[StoredFinding]:
        return [sf for store in self._reachable_stores(caller) for sf in store.values()]

    def _batch_import(self, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        self._validated("BatchImportFindings", params, frozenset({"Findings"}))
        return self._import_many(params["Findings"], caller.region, None)

    def _get_findings(self, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        self._validated("GetFindings", params)
        criteria = params.get("SortCriteria") or list(DEFAULT_SORT)
        fields = [resolve_sort_field(c.get("Field")) for c in criteria]
        descending = [c.get("SortOrder", "asc") == "desc" for c in criteria]
        predicate = compile_filters(params.get("Filters"), self._now())
        digest = query_digest(params.get("Filters") or {}, criteria, caller.account, caller.region)
        token = params.get("NextToken")
        after = decode_token(token, digest, len(fields) + 4) if token else None

        def key(sf: StoredFinding) -> list[Any]:
            return sort_values(sf.doc, fields) + [sf.doc["ProductArn"], sf.doc["Id"], sf.account, sf.region]

        limit = params.get("MaxResults", 100)
        filters = params.get("Filters") or {}
        # A relative date (DateRange) moves with the clock: such a query is never cached (sh_index.py).
        cached = self.indexed and "DateRange" not in json.dumps(filters)
        with self._lock:
            if cached:
                reads = reads_of(filters, [path for path, _ in fields])
                chunk, next_after = self.index.page(digest, reads, self._reachable_stores(caller), predicate, key,
                                                    descending, after, limit)
            else:
                matching = [sf for sf in self._reachable(caller) if predicate(sf.doc)]
                chunk, next_after = page(matching, key, descending, after, limit)
            out: dict[str, Any] = {"Findings": [copy.deepcopy(sf.doc) for sf in chunk]}
        if next_after is not None:
            out["NextToken"] = encode_token(digest, next_after)
        return out

    def _update_request(self, params: dict[str, Any]) -> tuple[list[dict[str, str]], dict[str, Any]]:
        """BatchUpdateFindings' checks before any finding is looked at: the identifiers and the values to set."""
        self._validated("BatchUpdateFindings", params)
        identifiers = params["FindingIdentifiers"]
        if len(identifiers) > MAX_UPDATE_IDENTIFIERS:
            raise invalid_input(f"FindingIdentifiers: at most {MAX_UPDATE_IDENTIFIERS} findings per request, "
                                f"got {len(identifiers)}")
        update = {k: v for k, v in params.items() if k != "FindingIdentifiers"}
        if not update:
            raise invalid_input("Specify at least one field to update")
        return identifiers, update

    def _batch_update(self, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        identifiers, update = self._update_request(params)
        fault = self._faults.take_unprocessed()
        now = format_timestamp(self._now())
        processed: list[dict[str, str]] = []
        unprocessed: list[dict[str, Any]] = []

        def reject(ident: dict[str, str], code: str, message: str) -> None:
            unprocessed.append({"FindingIdentifier": ident, "ErrorCode": code, "ErrorMessage": message})

        wrote: list[StoredFinding] = []
        with self._lock:
            stores = self._reachable_stores(caller)
            for ident in identifiers:
                if fault is not None and (fault.ids is None or ident["Id"] in fault.ids):
                    reject(ident, fault.code, fault.message)
                    continue
                key = (ident["ProductArn"], ident["Id"])
                matches = [store[key] for store in stores if key in store]
                if not matches:
                    reject(ident, "FindingNotFound", "Finding not found")
                    continue
                before = [sf.doc for sf in matches]
                errors = [err for sf in matches if (err := apply_update(sf, update, now)) is not None]
                wrote += [sf for sf, doc in zip(matches, before, strict=True) if sf.doc is not doc]
                if errors:
                    reject(ident, *errors[0])
                    continue
                processed.append({"Id": ident["Id"], "ProductArn": ident["ProductArn"]})
                for sf in matches:
                    self._emit(sf)
            self.index.written(update, wrote)
        return {"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}

    @staticmethod
    def _validated_v2(name: str, params: dict[str, Any]) -> None:
        problems = validate_request(sh_model.operation(name), params)
        if problems:
            raise validation("; ".join(problems))

    def _reachable_v2(self, caller: Caller) -> Callable[[str, str], bool]:
        visible = self._accounts.visible_to(caller.account)
        in_scope = region_scope(self._aggregation, caller.region)
        return lambda account, region: visible(account) and in_scope(region)

    def _get_findings_v2(self, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        self._validated_v2("GetFindingsV2", params)
        return self.v2.get(caller.account, caller.region, self._reachable_v2(caller), params)

    def _batch_update_v2(self, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        self._validated_v2("BatchUpdateFindingsV2", params)
        return self.v2.update(self._reachable_v2(caller), params, self._faults.take_unprocessed())

    # ---- finding aggregator ------------------------------------------------------------------------------

    def _create_aggregator(self, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        self._validated("CreateFindingAggregator", params)
        with self._lock:
            if self._aggregation is not None:
                raise invalid_input("A finding aggregator already exists")
            self._aggregation = Aggregation.checked(caller.region, params["RegionLinkingMode"],
                                                    params.get("Regions"), str(uuid.uuid4()))
            self.index.clear()  # what each caller can reach changed
            return self._aggregation.describe(caller.account)

    def _existing_aggregator(self, arn: Any) -> Aggregation:
        aggregation = self._aggregation
        if aggregation is None or not isinstance(arn, str) or not aggregation.matches_arn(arn):
            raise ServiceError("ResourceNotFoundException", f"Finding aggregator {arn} not found", 404)
        return aggregation

    def _get_aggregator(self, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        self._validated("GetFindingAggregator", params)
        return self._existing_aggregator(params.get("FindingAggregatorArn")).describe(caller.account)

    def _list_aggregators(self, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        self._validated("ListFindingAggregators", params)
        aggregation = self._aggregation
        found = [{"FindingAggregatorArn": aggregation.arn(caller.account)}] if aggregation else []
        return {"FindingAggregators": found}

    def _update_aggregator(self, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        self._validated("UpdateFindingAggregator", params)
        with self._lock:
            current = self._existing_aggregator(params.get("FindingAggregatorArn"))
            if caller.region != current.home_region:
                raise invalid_input(f"Call UpdateFindingAggregator from the aggregation region "
                                    f"{current.home_region}")
            self._aggregation = Aggregation.checked(current.home_region, params["RegionLinkingMode"],
                                                    params.get("Regions"), current.aggregator_id)
            self.index.clear()
            return self._aggregation.describe(caller.account)

    def _delete_aggregator(self, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
        self._validated("DeleteFindingAggregator", params)
        with self._lock:
            current = self._existing_aggregator(params.get("FindingAggregatorArn"))
            if caller.region != current.home_region:
                raise invalid_input(f"Call DeleteFindingAggregator from the aggregation region "
                                    f"{current.home_region}")
            self._aggregation = None
            self.index.clear()
        return {}

    # ---- /_sandbox/ control API --------------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        action = request.path[len("/_sandbox/"):].strip("/")
        try:
            body = json.loads(request.get_data() or b"{}") if request.method == "POST" else {}
            result = self._control_action(request.method, action, body)
        except (ValueError, KeyError, TypeError) as exc:
            return Response(json.dumps({"error": str(exc)}), status=400, content_type="application/json")
        if result is None:
            missing = {"error": f"no control {request.method} /_sandbox/{action}"}
            return Response(json.dumps(missing), status=404, content_type="application/json")
        return Response(json.dumps(result), status=200, content_type="application/json")

    def _control_action(self, method: str, action: str, body: Any) -> Any:
        if (method, action) == ("POST", "reset"):
            self.reset()
            return {}
        if (method, action) == ("GET", "state"):
            return self.state()
        if (method, action) == ("GET", "calls"):
            return self.calls.as_dict()
        if (method, action) == ("GET", "events"):
            with self._lock:
                return list(self.events)
        if (method, action) == ("POST", "throttle"):
            self.set_throttling(bool(body["enabled"]))
            return {"enabled": bool(body["enabled"])}
        if (method, action) == ("POST", "fault"):
            count = int(body.get("count", 1))
            if body.get("unprocessed"):
                self.inject_unprocessed(body.get("code", "ConcurrentUpdateError"), body.get("ids"), count,
                                        body.get("message"))
            else:
                self.inject_fault(body["operation"], int(body.get("status", 500)), body.get("code"),
                                  body.get("message"), count, account=body.get("account"),
                                  region=body.get("region"), after=int(body.get("after", 0)))
            return {}
        if (method, action) == ("POST", "hub"):
            enabled = body["enabled"]
            if not isinstance(enabled, bool):
                raise TypeError("enabled must be true or false")
            self.set_hub_enabled(enabled, body.get("account"), body.get("region"))
            return {"enabled": enabled, "account": body.get("account"), "region": body.get("region")}
        if (method, action) == ("POST", "load"):
            return self.load(body["findings"], body.get("account"), body.get("region"))
        if (method, action) == ("POST", "load-v2"):
            return self.v2.load(body["findings"], body.get("region"))
        return None
