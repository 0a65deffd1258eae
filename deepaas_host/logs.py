"""Logging set-up for the command line (library code only logs), and log-safe text.

A caller controls parts of what is logged: the path of a request (percent-decoded, so
``%0A`` is a newline), the model name in it, headers. Two rules keep such text from
forging records or driving the terminal:

- :func:`escape` writes control characters as ``\\n``, ``\\x1b``, ``\\u2028``, … (and a
  backslash as ``\\\\``); the request log and the unhandled-error log apply it to what
  the caller sent.
- The text formatter escapes the control characters of every message as well, and
  indents the continuation lines of a multi-line record (a traceback) so that only a
  record can start a line::

      2026-01-01 12:00:00,123 ERROR deepaas_host.api.middleware: unhandled error on …
          Traceback (most recent call last):
            …

The JSON formatter needs neither: JSON strings escape control characters.
"""

from __future__ import annotations

import json
import logging
import sys
import time

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging", "escape"]

_EXTRA = ("request_id", "model", "route", "status", "latency_ms")
_INDENT = "    "
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escape_char(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text: str) -> str:
    r"""``text`` with backslashes, control and other non-printable characters escaped.

    >>> print(escape("/v2/\n2026-01-01 INFO forged\x1b[2J"))
    /v2/\n2026-01-01 INFO forged\x1b[2J
    """
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(map(_escape_char, text))


def _escape_line(line: str) -> str:
    # Tabs are kept: they start no record. Backslashes too: a message escaped with
    # escape() must not be escaped twice.
    if line.isprintable():
        return line
    return "".join(c if c in ("\t", "\\") else _escape_char(c) for c in line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request fields when present."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _EXTRA:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message request_id=… model=…``; continuation lines indented."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        request_id = getattr(record, "request_id", None)
        if request_id:
            model = getattr(record, "model", None)
            line += f" request_id={request_id}" + (f" model={escape(model)}" if model else "")
        return line

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        lines = text.splitlines() or [""]
        return f"\n{_INDENT}".join(_escape_line(line) for line in lines)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
