"""Credentials out of every message: `redact(text)` hides passwords and tokens, `install_log_redaction()` applies
it to every log record of the process.

Hidden: the password of a URL's userinfo (`postgresql://user:secret@host` -> `user:***@`), a userinfo that is a
single token (`https://TOKEN@host`), the values of query parameters and `key=value` pairs whose name says they
are secret (password, token, key, secret, signature, credential: `?access_token=...`, libpq's `password=...`,
S3 presigned `X-Amz-Signature=...`, Azure SAS `sig=...`), and `Authorization: Bearer/Basic ...` values.
"""

from __future__ import annotations

import logging
import re

MASK = "***"

_SECRET_NAMES = (r"(?:[\w.-]*?(?:password|passwd|pwd|token|secret|api[_-]?key|apikey|access[_-]?key|credential|"
                 r"signature|session)[\w.-]*|sig|key)")
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^\s:/@?#]*)(?::(?P<password>[^\s/@?#]*))?@")
_PAIR = re.compile(rf"(?P<name>(?<![\w-]){_SECRET_NAMES})(?P<sep>\s*=\s*|=)(?P<value>'[^']*'|\"[^\"]*\"|[^\s&;,'\")]+)",
                   re.IGNORECASE)
_AUTHORIZATION = re.compile(r"(?P<head>\b(?:Bearer|Basic|Token)\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_installed = False


def _userinfo(match: re.Match[str]) -> str:
    scheme, user, password = match["scheme"], match["user"], match["password"]
    if password is not None:
        return f"{scheme}{user}:{MASK}@"
    # a lone userinfo is a user name (postgresql://postgres@/db) unless it looks like a token
    looks_secret = len(user) >= 20 and re.fullmatch(r"[A-Za-z0-9._~+/=-]+", user) is not None
    return f"{scheme}{MASK}@" if looks_secret else match.group(0)


def redact(text: str) -> str:
    """`text` with every credential it holds replaced by `***` (see the module docstring for what is hidden).

    Examples:
        >>> redact("cannot reach postgresql://geo:s3cret@db.example:5432/gv")
        'cannot reach postgresql://geo:***@db.example:5432/gv'
        >>> redact("GET https://example.org/a.tif?sig=abc123&sv=2021")
        'GET https://example.org/a.tif?sig=***&sv=2021'
    """
    if not text:
        return text
    text = _USERINFO.sub(_userinfo, text)
    text = _PAIR.sub(lambda m: f"{m['name']}{m['sep']}{MASK}", text)
    return _AUTHORIZATION.sub(lambda m: f"{m['head']}{MASK}", text)


def install_log_redaction() -> None:
    """Redact every log record this process creates from now on, whatever logger or handler emits it.

    Wraps the log record factory (once per process): the message, its arguments and a traceback's text are
    formatted and redacted when the record is made, so no handler or formatter sees a secret.
    """
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error report
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
