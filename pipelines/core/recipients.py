"""Recipient fields as mail systems write them (issue 14, "Suppression"), parsed into addresses.

A recipient field is an RFC 5322 address list (`To:` syntax, RFC 6532 for UTF-8): display names
(`Anna <anna@example.com>`, `"Doe, Anna" <anna@example.com>`, encoded words), comments
(`anna@example.com (Anna)`), groups (`team: anna@example.com, carl@example.com;`), several addresses
separated by commas, or a `mailto:` URI (RFC 6068: `mailto:anna@example.com,carl@example.com?cc=...`,
percent-encoded; `to`, `cc` and `bcc` fields all name recipients). `<mailto:...>` inside angle
brackets is read as the address it names.

`recipient_addresses` returns every address of a field in the one normalisation
(`pipelines.core.identity.email_key`: trimmed, NFKC, lower-cased), `[]` for a null or blank field (no
recipient), or `None` when the field cannot be parsed: any syntax error in any part of it, an
address without a local part or a domain. Callers must fail such a row (reason `unparseable`),
never allow it: an address a parser half understood may be a blacklisted person's.

The whole field is trimmed and NFKC-normalised before it is parsed, so fullwidth syntax
(`ａｎｎａ＠ｅｘａｍｐｌｅ．ｃｏｍ`, `＜…＞`) reads as what it looks like. Parsing is the standard
library's RFC 5322 parser (`email.headerregistry`); the common plain `local@domain` field skips it.
Docs: docs/spec.md §4 "Suppression", docs/decisions/0222-recipient-fields.md.
"""

from __future__ import annotations

import re
import unicodedata
from email.errors import InvalidHeaderDefect, NonASCIILocalPartDefect
from email.headerregistry import AddressHeader, HeaderRegistry
from urllib.parse import unquote

from pipelines.core.identity import email_key, trim_identity

_PLAIN = re.compile(r"[^\s\x00-\x1f\x7f@<>()\[\],;:\"\\]+@[^\s\x00-\x1f\x7f@<>()\[\],;:\"\\]+")
"""A field that is one bare address and nothing else: no parser needed."""
_DOMAIN = re.compile(r"(?:[\w-]+\.)*[\w-]+|\[[^\[\]\\\s]+\]")
"""A domain a mail system could mean: dot-separated labels of letters, digits, `-` (any script), or an
address literal. RFC 5322 also allows `'`, `{` and the like in a domain; no mail system delivers
there, and `'anna@example.com'` (quoted by a spreadsheet) must not pass as a harmless address."""
_MAILTO = re.compile(r"mailto:", re.IGNORECASE)
_ANGLE_MAILTO = re.compile(r"<\s*mailto:", re.IGNORECASE)
_RECIPIENT_HFIELDS = ("to", "cc", "bcc")
_HEADERS = HeaderRegistry()


def recipient_addresses(field: str | None) -> list[str] | None:
    """The normalised addresses of one recipient field; [] when blank; None when unparseable."""
    text = trim_identity(field)
    if text is None:
        return []
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    if _MAILTO.match(text):
        return _mailto(text[len("mailto:"):])
    return _address_list(text)


def _address_list(text: str) -> list[str] | None:
    if _PLAIN.fullmatch(text):
        key = _key(text)
        return [key] if key is not None else None
    text = _ANGLE_MAILTO.sub("<", text)
    try:
        header = _HEADERS("To", text)
    except (IndexError, ValueError, TypeError):  # the parser's own failures on some broken input
        return None
    assert isinstance(header, AddressHeader)  # "To" is an address header in the registry
    if any(isinstance(d, InvalidHeaderDefect) and not isinstance(d, NonASCIILocalPartDefect) for d in header.defects):
        return None
    found = []
    for address in header.addresses:
        key = _key(address.addr_spec) if address.username and address.domain else None
        if key is None:
            return None
        found.append(key)
    if not found and not header.groups:
        return None  # text that names no address and no (empty) group
    return found


def _key(addr_spec: str) -> str | None:
    """The normalised address, or None when its domain is no host a mail system could deliver to."""
    key = email_key(addr_spec)
    if key is None:
        return None
    local, at, domain = key.rpartition("@")
    return key if at and local and _DOMAIN.fullmatch(domain) else None


def _mailto(rest: str) -> list[str] | None:
    """RFC 6068: `to` before `?`, comma-separated and percent-encoded; `to`/`cc`/`bcc` fields after it."""
    path, _, query = rest.partition("?")
    parts = [unquote(path)] if path else []
    for pair in query.split("&") if query else []:
        name, eq, value = pair.partition("=")
        if not eq:
            return None
        if unquote(name).lower() in _RECIPIENT_HFIELDS and value:
            parts.append(unquote(value))
    if not parts:
        return None
    found: list[str] = []
    for part in parts:
        addresses = _address_list(part.strip())
        if not addresses:
            return None
        found.extend(addresses)
    return found
