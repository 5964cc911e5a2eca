"""The one identity normalisation (docs/spec.md §2) and the validation of blacklist entries.

Every email, user id, device id and scope, in entries and in data, is compared in the form computed
here; `pipelines/core/sql.py` computes the very same form in DuckDB from the same `TRIM_CHARS` (and calls
back into `fold_email` / `lower_simple` for non-ASCII text, so the two sides cannot drift apart):

1. trim every character of `TRIM_CHARS` from both ends (Unicode White_Space, zero-width characters
   and the BOM); a value that is empty after trimming is null and never matches anything;
2. emails: NFKC (fullwidth and other compatibility forms fold), then lower-case (`lower_simple`),
   then step 1 again (NFKC can put a space at an end: U+00A8 becomes U+0020 U+0308);
3. user ids and device ids: the trimmed text, case kept;
4. scopes: lower-cased; a null or blank scope in data is `DefaultScope`.
"""

from __future__ import annotations

import re
import unicodedata

from pipelines.core.errors import InputError

WHITE_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
"""Every character with the Unicode White_Space property (25 of them, Unicode 15)."""
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
"""Zero-width space, non-joiner, joiner, word joiner, and the BOM (zero-width no-break space)."""
TRIM_CHARS = WHITE_SPACE + ZERO_WIDTH
"""What "trimmed" means for every identity, in Python (`str.strip`) and in SQL (`trim(x, chars)`)."""
NORMALISATION = "2:trim-white_space+zero_width;email=nfkc,lower_simple;ids=trim;scope=trim,lower_simple"
"""Names the normalisation; part of the incremental sweep's fingerprint, so changing the rules above
makes the next sweep re-match every file once (docs/decisions/0007-incremental-sweeps.md)."""

DEFAULT_SCOPE = "DefaultScope"
MAX_EMAIL_LENGTH = 254
MAX_USER_ID_LENGTH = 256
_ASCII_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20]")
"""On ASCII text, exactly the characters `str.isspace()` or `ord(ch) < 32` refuse (one regex search, not a loop)."""
_SCOPE_RE = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")
_GUID_SCOPE_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""Optimizely's own list example uses a lower-case site GUID as a scope (docs/decisions/0103-registry-semantics.md)."""


def trim_identity(value: str | None) -> str | None:
    """Step 1: strip `TRIM_CHARS` from both ends; None when nothing is left."""
    if value is None:
        return None
    return value.strip(TRIM_CHARS) or None


def fold_email(trimmed: str) -> str | None:
    """Step 2 on an already trimmed email: NFKC, simple per-character lower-case, trimmed again
    (NFKC turns a few spacing marks into a space plus a combining mark: U+00A8 is ` \u0308`), so
    that normalising a normalised email changes nothing."""
    if trimmed.isascii():  # NFKC changes no ASCII text
        return trimmed.lower()
    return trim_identity(lower_simple(unicodedata.normalize("NFKC", trimmed)))


def email_key(value: str | None) -> str | None:
    """The comparison form of an email (found in data or given for an entry); None when blank."""
    trimmed = trim_identity(value)
    return None if trimmed is None else fold_email(trimmed)


def id_key(value: str | None) -> str | None:
    """The comparison form of a user id or device id: trimmed text; None when blank."""
    return trim_identity(value)


def normalize_email(raw: str) -> str:
    """Return the stored form of an email (`email_key`) or raise InputError when it is not one."""
    email = email_key(raw) or ""
    local, at, domain = email.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or len(email) > MAX_EMAIL_LENGTH
        or (_ASCII_SPACE_OR_CONTROL.search(email) is not None if email.isascii()
            else any(ch.isspace() or ord(ch) < 32 for ch in email))
    ):
        raise InputError(
            "invalid email: expected local@domain without spaces, at most 254 characters"
        )
    return email


def lower_simple(text: str) -> str:
    """Lower-case character by character, the way DuckDB's `lower()` does (Unicode simple case
    mapping), so stored entries and data compare alike. Python's `str.lower()` differs in two ways:
    `İ` (U+0130) becomes `i` + combining dot, and a word-final `Σ` becomes `ς`."""
    if "\u0130" not in text and "\u03a3" not in text:  # `str.lower` is per character but for these two
        return text.lower()
    return "".join("i" if ch == "\u0130" else ch.lower() for ch in text)


def validate_scope(raw: str) -> str:
    """Return a valid scope or raise InputError (Optimizely rules, plus `DefaultScope`).

    Scopes compare case-insensitively, so any case variant of the reserved name (`defaultscope`)
    is returned as `DefaultScope`: one entry, never two (docs/decisions/0231)."""
    if raw.lower() == DEFAULT_SCOPE.lower():
        return DEFAULT_SCOPE
    if _SCOPE_RE.fullmatch(raw) or _GUID_SCOPE_RE.fullmatch(raw):
        return raw
    raise InputError(
        f"invalid scope {raw[:70]!r}: use 1-64 lower-case letters, digits or '_', starting with a "
        f"letter or digit, or {DEFAULT_SCOPE!r}"
    )


def validate_user_id(raw: str) -> str:
    """Return a user id (external id) trimmed, or raise InputError when blank or over-long."""
    user_id = id_key(raw) or ""
    if not user_id or len(user_id) > MAX_USER_ID_LENGTH or any(ord(ch) < 32 for ch in user_id):
        raise InputError("invalid user id: expected 1-256 printable characters")
    return user_id


def scope_key(scope: str | None) -> str | None:
    """The comparison key of an entry's scope: None (every scope) or the lower-cased name."""
    return None if scope is None else lower_simple(scope)


def scope_text_key(value: str | None) -> str | None:
    """A scope found in data, trimmed and lower-cased; None when null or blank."""
    trimmed = trim_identity(value)
    return None if trimmed is None else lower_simple(trimmed)


def data_scope_key(value: str | None) -> str:
    """The comparison key of a scope found in data: trimmed, lower-cased; null or blank is `DefaultScope`."""
    key = scope_text_key(value)
    return DEFAULT_SCOPE.lower() if key is None else key
