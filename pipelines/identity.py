"""Normalisation and validation of the identities a blacklist entry carries (SPEC §2).

Emails are compared trimmed and lower-cased. Scopes follow Optimizely's rules; data whose scope is
null, empty or whitespace belongs to `DefaultScope`, and scopes in data compare case-insensitively.
"""

from __future__ import annotations

import re
import unicodedata

from pipelines.errors import InputError

DEFAULT_SCOPE = "DefaultScope"
MAX_EMAIL_LENGTH = 254
MAX_USER_ID_LENGTH = 256
_SCOPE_RE = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")
_GUID_SCOPE_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""Optimizely's own list example uses a lower-case site GUID as a scope (docs/decisions/0103-registry-semantics.md)."""


def normalize_email(raw: str) -> str:
    """Return the stored form of an email (trimmed, lower-cased) or raise InputError."""
    # NFC first: `zoë` typed precomposed or as `e` + combining diaeresis is the same address.
    email = lower_simple(unicodedata.normalize("NFC", raw.strip()))
    local, at, domain = email.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or len(email) > MAX_EMAIL_LENGTH
        or any(ch.isspace() for ch in email)
        or any(ord(ch) < 32 for ch in email)
    ):
        raise InputError(
            "invalid email: expected local@domain without spaces, at most 254 characters"
        )
    return email


def lower_simple(text: str) -> str:
    """Lower-case character by character, the way DuckDB's `lower()` does (Unicode simple case
    mapping), so stored entries and data compare alike. Python's `str.lower()` differs in two ways:
    `İ` (U+0130) becomes `i` + combining dot, and a word-final `Σ` becomes `ς`."""
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
    """Return a user id (external id) trimmed, or raise InputError when empty or over-long."""
    user_id = raw.strip()
    if not user_id or len(user_id) > MAX_USER_ID_LENGTH or any(ord(ch) < 32 for ch in user_id):
        raise InputError("invalid user id: expected 1-256 printable characters")
    return user_id


def scope_key(scope: str | None) -> str | None:
    """The comparison key of an entry's scope: None (every scope) or the lower-cased name."""
    return None if scope is None else scope.lower()


def data_scope_key(value: str | None) -> str:
    """The comparison key of a scope found in data: null/empty/whitespace is `DefaultScope`."""
    if value is None or not value.strip():
        return DEFAULT_SCOPE.lower()
    return value.strip().lower()
