"""Logging set-up: plain text for people, one JSON object per line for log collectors.

Every record passes `RedactSecrets` on its way out, whichever logger made it: logs never carry
an access token, an id token or the secret key (SPEC §5 Operations). The code does not log them
in the first place (no variables, no headers); the filter is the net under that rule, for a
token that ends up in an exception message or a URL.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from app.request_context import NO_REQUEST, RequestIdFilter
from app.settings import LogFormat, Settings

#: The name of the handler `configure_logging` installs on the root logger.
HANDLER_NAME = "studio"
REDACTED = "[redacted]"

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is logged.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

# A JSON Web Token (access tokens, OIDC id tokens): base64url header starting `{"`, then two
# more segments; and whatever follows "Bearer" in an Authorization value.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")
# Signed media URLs (`sig=`) and token-like query parameters.
_QUERY_SECRET = re.compile(r"(?i)\b(sig|signature|token|access_token|id_token|idtoken)=[^&\s\"']+")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {
            key: value
            for key, value in vars(record).items()
            if key not in _STANDARD_ATTRIBUTES and value != NO_REQUEST
        }
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RedactSecrets(logging.Filter):
    """Replaces tokens and the given secrets in a record's message, string extras and traceback.

    The message is formatted here (and the record's ``args`` dropped) so that a secret passed as
    an argument is caught too. uvicorn's access lines lose their query string: a GraphQL GET
    carries its variables there.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Short values would blank out ordinary words; real keys are long.
        self._secrets = sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access":
            _drop_query_string(record)
        record.msg, record.args = self.redact(record.getMessage()), None
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and isinstance(value, str):
                setattr(record, key, self.redact(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = _JWT.sub(REDACTED, text)
        text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
        return _QUERY_SECRET.sub(rf"\g<1>={REDACTED}", text)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactSecrets([settings.secret_key, settings.metrics_token or ""]))
    if settings.log_format is LogFormat.JSON:
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.value)
    # uvicorn's loggers go through the same handler, format and level.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
        logging.getLogger(name).setLevel(logging.NOTSET)


def _drop_query_string(record: logging.LogRecord) -> None:
    """uvicorn logs ``(client, method, path with query, http version, status)``."""
    args = record.args
    if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
        path, question, _ = args[2].partition("?")
        record.args = (*args[:2], path + ("?…" if question else ""), *args[3:])
