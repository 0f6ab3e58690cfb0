"""Secrets (hub tokens) never leave the process: redaction by value for every file, log line and card.

Redaction does not depend on how a token arrived (``--hub_token``, ``--hub-token``, ``--hub_token=…``,
``HF_TOKEN``, the login cache): every token the toolkit has seen is remembered by value, and
:func:`redact` replaces it wherever it appears. A log filter applies the same rule to every log record.
"""

from __future__ import annotations

import logging
import os
import re

TOKEN_ENV_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
# Every spelling of a token flag the toolkit's parsers accept (prefix matching is off in every parser).
SECRET_FLAGS = ("--hub_token", "--hub-token", "--token")
MASK = "***"
_MIN_LENGTH = 6  # shorter values would mask ordinary words; no real hub token is this short
_registered: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember ``value`` as a secret: :func:`redact` masks it from now on (in this process)."""
    if value and len(value) >= _MIN_LENGTH:
        _registered.add(value)


def known_secrets() -> list[str]:
    """Every secret seen so far (registered, or in a token environment variable), longest first."""
    values = set(_registered)
    values.update(v for name in TOKEN_ENV_VARS if len(v := os.environ.get(name, "")) >= _MIN_LENGTH)
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every known secret replaced by ``***``.

    Example:
        >>> register_secret("hf_abcdefgh")
        >>> redact("token hf_abcdefgh used")
        'token *** used'
    """
    for secret in known_secrets():
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_argv(argv: list[str]) -> list[str]:
    """A command line with the value of any token flag masked (``--hub-token X``, ``--hub_token=X``) and
    every known secret masked wherever else it appears."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg in SECRET_FLAGS and i + 1 < len(out):
            register_secret(out[i + 1])
            out[i + 1] = MASK
        elif arg.startswith(tuple(f"{flag}=" for flag in SECRET_FLAGS)):
            flag, value = arg.split("=", 1)
            register_secret(value)
            out[i] = f"{flag}={MASK}"
    return [redact(a) for a in out]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class RedactingFilter(logging.Filter):
    """A logging filter that masks known secrets in the formatted message of every record, and drops terminal
    colour codes (transformers writes its load report with them whatever the output is: in a log file or a
    pipe they show as ``[1m...[0m``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = _ANSI.sub("", redact(message) if known_secrets() else message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install_log_redaction() -> None:
    """Attach :class:`RedactingFilter` to every handler of the root logger and of the libraries that keep
    their own handlers (transformers, datasets), once."""
    loggers = [logging.getLogger(), logging.getLogger("transformers"), logging.getLogger("datasets")]
    for lg in loggers:
        for handler in lg.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
