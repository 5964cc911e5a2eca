"""Keyed hashes of identities: how reports name a person without naming them (decision 0005)."""

from __future__ import annotations

import functools
import hashlib
import hmac

from pipelines.core.identity import normalize_email, validate_user_id


def keyed_hash(secret: bytes, kind: str, value: str) -> str:
    """HMAC-SHA256 of a normalised identity; `kind` (`email`, `user_id`) separates the domains."""
    if kind == "email":
        value = normalize_email(value)
    elif kind == "user_id":
        value = validate_user_id(value)
    else:
        raise ValueError(f"unknown identity kind {kind!r}")
    mac = _keyed(secret).copy()  # the key's HMAC state, set up once per secret
    mac.update(f"{kind}:{value}".encode())
    return mac.hexdigest()


@functools.lru_cache(maxsize=8)
def _keyed(secret: bytes) -> hmac.HMAC:
    return hmac.new(secret, digestmod=hashlib.sha256)


def key_id(secret: bytes) -> str:
    """A short public fingerprint of the report secret: lookups know which reports they can read."""
    return hmac.new(secret, b"gdpr-sweep report key id", hashlib.sha256).hexdigest()[:16]
