"""Which failures belong to one item and which stop the whole cycle.

An item's failure (a 5xx or 4xx for that issue, a workflow without the wanted transition, a finding Security Hub
would not update) is queued for a retry and the cycle goes on. A failure no item can work around stops the
cycle, because every further call would fail the same way and only burn retries: Jira refused the token
(401: expired or revoked), Jira cannot be reached at all (after the retry policy's own retries), the lease went
to another instance. Those end the cycle with exit code 1 and a one-line reason. Anything else (a bug) is not
caught here either: it must not be mistaken for a bad item.
"""

from __future__ import annotations

import requests
from botocore.exceptions import BotoCoreError, ClientError
from jira import JIRAError

from .jira_sink import JiraSetupError, NoTransition, describe_jira_error
from .lease import LeaseHeld
from .neterrors import unreachable_reason
from .retry import AmbiguousWrite

_ITEM_FAILURES = (JIRAError, NoTransition, AmbiguousWrite, requests.RequestException, ValueError, KeyError,
                  BotoCoreError, ClientError)


def is_systemic(exc: BaseException) -> bool:
    """True when the failure is not the item's: the cycle stops (JiraAuthError, JiraUnreachable, lease lost)."""
    return isinstance(exc, JiraSetupError | LeaseHeld)


def is_item_failure(exc: BaseException) -> bool:
    """True for failures that are isolated to the item that met them."""
    if is_systemic(exc):
        return False
    return isinstance(exc, _ITEM_FAILURES)


def item_error(exc: BaseException, what: str = "") -> str:
    """One header-free line for an item's failure (JIRAError's own text carries the request headers)."""
    prefix = f"{what}: " if what else ""
    if isinstance(exc, JIRAError):
        return describe_jira_error(exc, what or "Jira call failed")
    reason = unreachable_reason(exc) if isinstance(exc, OSError) else None
    if reason:
        return prefix + reason
    text = str(exc).split("\n", 1)[0][:300]
    return f"{prefix}{type(exc).__name__}{': ' + text if text else ''}"
