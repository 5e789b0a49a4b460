"""Powertools Logger and Metrics for the functions, with secrets redacted from every log record."""

from __future__ import annotations

import logging
import re
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "x-metrics-export"
NAMESPACE = "XMetricsExport"

_NAMES = (
    r"access_token|refresh_token|client_secret|code_verifier|code|token|authorization|secret|"
    r"password|browser_secret|xmx_state"
)
# A quote (JSON-escaped inside JSON, too), or its URL encoding (%22, %27; %2522 encoded twice).
_QUOTE = r"(?:\\?['\"]|%(?:25)?2[27])"
# `=` or `:`, or their URL encoding (%3D, %3A).
_ASSIGN = r"(?:[=:]|%(?:25)?3[ADad])"
_SECRET_KEYS = re.compile(
    # The name starts a word, or follows a URL escape (`%26code%3D…` is `&code=…` encoded).
    rf"(?i)(?:\b|(?<=%[0-9a-f]{{2}})|(?<=%25[0-9a-f]{{2}}))({_NAMES})\b"
    # `=`, `:`, `": "`, `' : '`, `%3D`, `%22%3A%22`: the name's closing quote and spaces included.
    rf"({_QUOTE}?\s*{_ASSIGN}\s*)"
    # A quoted value up to its closing quote, or a bare one up to a separator (or an encoded one).
    r"(?:(\\?['\"])(.*?)\3|(" + _QUOTE + r"?)((?:(?!%(?:25)?2[0267])[^\s&\"',;}\\])+))"
)
_SECRET_NAME = re.compile(rf"(?i)\s*({_NAMES})\s*")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
REDACTED = "[REDACTED]"


def _redacted(match: re.Match[str]) -> str:
    name, assign, quote, _, encoded_quote, _ = match.groups()
    opening = quote or encoded_quote or ""
    return f"{name}{assign}{opening}{REDACTED}{quote or ''}"


def redact(text: str) -> str:
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _SECRET_KEYS.sub(_redacted, text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: REDACTED if _SECRET_NAME.fullmatch(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """A last line of defence: no code here logs a secret on purpose, and this catches mistakes."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Powertools logs whole events (POWERTOOLS_LOGGER_LOG_EVENT) as dicts: the callback's
        # carries the code and the state cookie.
        record.msg = _scrub(record.msg)
        if record.args:
            record.args = (
                tuple(_scrub(a) for a in record.args) if isinstance(record.args, tuple) else record.args
            )
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD_ATTRS and isinstance(value, str | dict | list):
                setattr(record, name, _scrub(value))
        return True


_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

logger = Logger(service=SERVICE)
_REDACTING = RedactingFilter()
logger.addFilter(_REDACTING)
# Lambda's own root handler carries whatever other libraries log: filter it as well.
for _handler in logging.getLogger().handlers:
    _handler.addFilter(_REDACTING)
# At DEBUG, botocore logs request bodies (a DynamoDB item holding the PKCE verifier) in shapes no
# pattern can redact reliably; these libraries stay at INFO whatever LOG_LEVEL or the root says.
for _name in ("botocore", "boto3", "s3transfer", "urllib3"):
    logging.getLogger(_name).setLevel(logging.INFO)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


class PowertoolsTelemetry:
    def count(self, name: str, value: float = 1, unit: str = "Count") -> None:
        metrics.add_metric(name=name, unit=MetricUnit(unit), value=value)

    def info(self, message: str, **fields: Any) -> None:
        logger.info(message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        logger.warning(message, **fields)


def log_failure(exc: BaseException, **fields: Any) -> None:
    """One line naming the failure; no traceback (it can carry request data) and nothing secret."""
    logger.error("request failed", error=type(exc).__name__, detail=redact(str(exc))[:300], **fields)
