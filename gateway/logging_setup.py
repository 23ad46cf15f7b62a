"""Logging: one JSON object per line on stdout (or readable lines in a dev terminal).

Every record carries the id of the request it was logged in. Secrets never reach a record:
nothing logs API keys, Idempotency-Key values in full, or notes.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

from gateway.request_state import current_request
from gateway.settings import Settings

# uvicorn's color_message duplicates the message with terminal escape codes.
_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            state = current_request()
            record.request_id = state.request_id if state else None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD_ATTRS and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{name}={value}"
            for name, value in record.__dict__.items()
            if name not in _STANDARD_ATTRS and not name.startswith("_") and value is not None
        )
        line = f"{record.levelname:<7} {record.name}: {record.getMessage()} {extras}".rstrip()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(settings: Settings, stream: object = None) -> None:
    # No record of ours prints the caller's file and line, thread or process name (the access
    # line carries its pid itself): skip collecting them for every record, as the logging
    # cookbook's "Optimization" section describes.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    out = stream or sys.stdout
    use_console = settings.log_format == "console" or (
        settings.log_format == "auto" and not settings.is_production and out.isatty()  # type: ignore[attr-defined]
    )
    handler = logging.StreamHandler(out)  # type: ignore[arg-type]
    handler.setFormatter(ConsoleFormatter() if use_console else JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_gateway", False):
            root.removeHandler(existing)
    handler._gateway = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # uvicorn's own access log would duplicate ours, without request ids.
    logging.getLogger("uvicorn.access").disabled = True
    # /readyz reads the schema revision; alembic would log two INFO lines on every probe.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
