"""Log set-up: text for people, JSON lines for log collectors.

Access-log records carry their fields as ``extra`` attributes, so the JSON
formatter emits them as keys rather than one formatted string.

Messages often quote what a client sent (a method, a path): both formats
escape non-printable characters in them, so no record can end its line
early or pass off text as a record of its own.
"""

from __future__ import annotations

import json
import logging
import sys
import time

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")

#: LogRecord attributes that are not extra fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def escape_text(text: str, also: str = "") -> str:
    """``text`` with every non-printable character (line breaks of any kind,
    controls, bidi overrides) and any in ``also`` as ``\\xNN``-style escapes."""
    if text.isprintable() and not any(char in text for char in also):
        return text
    return "".join(_escape(char) if not char.isprintable() or char in also else char for char in text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


class TextFormatter(logging.Formatter):
    """The standard text format, one line per record (a traceback aside)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        if record.message.isprintable():
            return super().formatMessage(record)
        safe = logging.makeLogRecord(vars(record))
        safe.message = escape_text(record.message)
        return super().formatMessage(safe)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": escape_text(record.getMessage()),
        }
        document.update((k, escape_text(v) if isinstance(v, str) else v)
                        for k, v in vars(record).items() if k not in _STANDARD)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # CherryPy's own loggers would repeat what the JSON errors already say.
    for name in ("cherrypy.error", "cherrypy.access"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
