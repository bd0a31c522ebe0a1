"""The one exception type the Security Hub stand-in raises to answer a request with an AWS error.

botocore's REST-JSON parser takes the error code from the `x-amzn-ErrorType` header (text before the first
`:`) and the message from the body's `message`/`Message`, so every error the stand-in sends carries both.
"""

from __future__ import annotations

import json
from typing import Any


class ServiceError(Exception):
    """An AWS-style error answer: HTTP status, error code and message."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> bytes:
        return json.dumps({"Code": self.code, "Message": self.message, "message": self.message}).encode()

    def headers(self) -> list[tuple[str, str]]:
        return [("Content-Type", "application/json"), ("x-amzn-ErrorType", self.code)]


def invalid_input(message: str) -> ServiceError:
    """The 400 InvalidInputException the real API answers for malformed requests."""
    return ServiceError("InvalidInputException", message, 400)


def as_json(value: Any) -> str:
    """Compact JSON for error messages that quote a request value."""
    return json.dumps(value, sort_keys=True, default=str)
