"""Where the Jira token comes from: an environment variable, a file (a Kubernetes secret mount) or AWS Secrets
Manager, named in the config as a `TokenSource`; never the token itself.

Every error says which source failed and why, and never contains the value: error texts end up in logs,
exit messages and CI output. The value is also checked to be one clean line, because an HTTP library that
rejects a header with a line break quotes the header, token and all, in its exception.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

log = logging.getLogger(__name__)

# An environment variable's name as people write them: capitals, digits and _ (SH2JIRA_JIRA_TOKEN). Stricter than
# POSIX on purpose: every pasted Jira token (Cloud ATATT..., a Data Center PAT) has lower-case letters, so it is
# refused here, and config errors about it never echo the value.
ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]{0,127}$"
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):\d{12}:secret:.+$")
_BODY_MARKERS = (b'"SecretString"', b'"SecretBinary"')


class TokenSourceError(RuntimeError):
    """The token could not be read; the message names the source and the reason, never the value."""


class TokenSource(BaseModel):
    """Exactly one of `env`, `file`, `aws_secret`; `aws_secret_key` picks a key of a JSON secret."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN, description=(
        "Name of the environment variable holding the token (its name, never the token)."))
    file: str | None = Field(default=None, min_length=1, description=(
        "Path of a file holding the token, e.g. a Kubernetes secret mount; a trailing newline is ignored."))
    aws_secret: str | None = Field(default=None, min_length=1, description=(
        "AWS Secrets Manager secret id: its name or ARN."))
    aws_secret_key: str | None = Field(default=None, min_length=1, description=(
        "Key of the JSON object stored in the secret; leave out for a plain-text secret."))
    aws_region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$", description=(
        "Region of the secret; default: the ARN's region, else the AWS SDK's default region."))

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, data: Any) -> Any:
        if not isinstance(data, dict) and not isinstance(data, TokenSource):
            # The likeliest non-mapping is the token pasted in: say so without echoing it.
            raise ValueError("must be a mapping with one of env, file or aws_secret (where to read the token); "
                             "the token itself never goes in the config")
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> TokenSource:
        given = [name for name in ("env", "file", "aws_secret") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of env, file or aws_secret, not "
                             + (" and ".join(given) if given else "none"))
        if self.aws_secret is None and (self.aws_secret_key is not None or self.aws_region is not None):
            raise ValueError("aws_secret_key and aws_region go only with aws_secret")
        return self

    def describe(self) -> str:
        """Which source this is, for messages: `env SH2JIRA_JIRA_TOKEN`, `file /run/...`, `aws_secret x`."""
        if self.env is not None:
            return f"env {self.env}"
        if self.file is not None:
            return f"file {self.file}"
        key = f" (key {self.aws_secret_key!r})" if self.aws_secret_key else ""
        return f"aws_secret {self.aws_secret}{key}"


def resolve_token(source: TokenSource | dict[str, Any], *, environ: dict[str, str] | None = None,
                  session: Any = None) -> str:
    """Read the token named by `source`; raise TokenSourceError. `session` is a boto3 Session (default: a
    new one, so credentials, region and endpoint come from the usual AWS environment)."""
    if not isinstance(source, TokenSource):
        source = TokenSource.model_validate(source)
    if source.env is not None:
        raw = (os.environ if environ is None else environ).get(source.env)
        if raw is None:
            raise TokenSourceError(f"Jira token from {source.describe()}: the environment variable is not set")
    elif source.file is not None:
        raw = _read_file(source)
    else:
        raw = _read_aws(source, session)
    return _clean(raw, source)


def _read_file(source: TokenSource) -> str:
    path = Path(str(source.file))
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        reason = "no such file (is the secret mounted there?)"
    except IsADirectoryError:
        reason = "is a directory; name the file inside it (the secret's key)"
    except PermissionError:
        reason = f"permission denied for uid {os.getuid()} (check the mount's defaultMode / fsGroup)"
    except UnicodeDecodeError:
        reason = "is not UTF-8 text"
    except OSError as exc:
        reason = f"cannot be read: {exc.strerror or type(exc).__name__}"
    raise TokenSourceError(f"Jira token from {source.describe()}: {reason}")


def _read_aws(source: TokenSource, session: Any) -> str:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    _hide_secret_bodies()
    what = f"Jira token from {source.describe()}"
    arn = _SECRET_ARN.match(str(source.aws_secret))
    region = source.aws_region or (arn.group(1) if arn else None)
    try:
        sess = session if session is not None else boto3.session.Session()
        client = sess.client("secretsmanager", region_name=region)
        reply = client.get_secret_value(SecretId=source.aws_secret)
    except NoRegionError:
        raise TokenSourceError(f"{what}: no AWS region; set aws_region or AWS_REGION") from None
    except NoCredentialsError:
        raise TokenSourceError(f"{what}: no AWS credentials found") from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        hints = {"ResourceNotFoundException": f"no such secret in region {client.meta.region_name}",
                 "AccessDeniedException": "access denied; the role needs secretsmanager:GetSecretValue on it "
                                          "(and kms:Decrypt if a customer-managed key encrypts it)",
                 "DecryptionFailure": "Secrets Manager could not decrypt it with its KMS key",
                 "InvalidRequestException": "the secret is not usable (scheduled for deletion?)"}
        raise TokenSourceError(f"{what}: {code or 'error'}: {hints.get(code, 'the request failed')}") from None
    except BotoCoreError as exc:
        raise TokenSourceError(f"{what}: {type(exc).__name__}") from None
    text = reply.get("SecretString")
    if text is None:
        try:
            text = bytes(reply.get("SecretBinary") or b"").decode("utf-8")
        except UnicodeDecodeError:
            raise TokenSourceError(f"{what}: the secret is binary, not text; store the token as a "
                                   "SecretString") from None
    return _pick_key(text, source, what)


def _pick_key(text: str, source: TokenSource, what: str) -> str:
    """The whole secret, or one key of a JSON-object secret."""
    obj: Any = None
    if text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
    if source.aws_secret_key is None:
        if isinstance(obj, dict):
            raise TokenSourceError(f"{what}: the secret holds a JSON object; name the key holding the token "
                                   f"with aws_secret_key (keys: {_key_list(obj)})")
        return text
    if not isinstance(obj, dict):
        raise TokenSourceError(f"{what}: the secret is not a JSON object, so it has no key "
                               f"{source.aws_secret_key!r}; drop aws_secret_key for a plain-text secret")
    if source.aws_secret_key not in obj:
        raise TokenSourceError(f"{what}: the JSON secret has no key {source.aws_secret_key!r} "
                               f"(keys: {_key_list(obj)})")
    value = obj[source.aws_secret_key]
    if not isinstance(value, str):
        raise TokenSourceError(f"{what}: the value under {source.aws_secret_key!r} is "
                               f"{type(value).__name__}, not text")
    return value


def _key_list(obj: dict[str, Any]) -> str:
    """Key names help fix a typo and are not secret themselves; long or odd ones are cut short."""
    return ", ".join(repr(str(k)[:40]) for k in list(obj)[:20]) or "none"


def _clean(raw: str, source: TokenSource) -> str:
    """Drop the trailing newline files and `echo` add; refuse anything else that would break a header."""
    token = raw.rstrip("\r\n")
    what = f"Jira token from {source.describe()}"
    if not token:
        raise TokenSourceError(f"{what}: it is empty")
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        where = "a line break" if ("\n" in token or "\r" in token) else "whitespace or control characters"
        raise TokenSourceError(f"{what}: it contains {where} ({len(token)} characters); a token is one line "
                               "without spaces")
    return token


class _RedactSecretBodies(logging.Filter):
    """botocore logs every response body at DEBUG; a GetSecretValue body carries the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, bytes | str) and _carries_secret(a) for a in args):
            record.args = tuple("<redacted by sh2jira: secret value>" if isinstance(a, bytes | str) else a
                                for a in args)
        return True


def _carries_secret(value: bytes | str) -> bool:
    data = value.encode("utf-8", "replace") if isinstance(value, str) else value
    return any(marker in data for marker in _BODY_MARKERS)


_REDACTOR = _RedactSecretBodies()


def _hide_secret_bodies() -> None:
    """Install the redaction on the botocore loggers that log raw bodies (idempotent)."""
    for name in ("botocore.parsers", "botocore.endpoint", "botocore.hooks", "botocore.retryhandler"):
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)
