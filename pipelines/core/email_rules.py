"""Which emails a blacklist entry may carry (§2 "Email"): what no mail system would deliver is refused.

`validate_email` composes with the one normalisation (`pipelines.core.identity.normalize_email`): it
normalises first, then checks the normalised address. Data is never validated, only matched: these
rules apply to entries added by the CLI, the HTTP API and imports. Choices (docs/decisions/0232):
- exactly one `@`, a non-empty local part, no whitespace, control or zero-width character anywhere,
  at most 254 characters (RFC 5321's path limit);
- the domain is a host name by IDNA 2008 (the `idna` package): at least two labels (no dotless
  `a@b`: no public mail system delivers to a bare top-level domain), each 1-63 characters, no
  leading or trailing hyphen, no emoji or symbols, a top-level label that is not all digits;
  A-labels (`xn--...`) must decode. No trailing dot, no address literals (`a@[192.0.2.1]`).
- quoted local parts (`"a@b"@example.com`) are not supported: a second `@` is refused.
Messages say what is wrong and never repeat the address (it is personal data).
"""

from __future__ import annotations

import re

import idna

from pipelines.core.errors import InputError
from pipelines.core.identity import MAX_EMAIL_LENGTH, normalize_email

_HINT = "expected local@domain.tld"
_ASCII_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_DOMAIN = re.compile(rf"(?:{_ASCII_LABEL}\.)+(?=[a-z0-9-]*[a-z]){_ASCII_LABEL}")
"""An all-ASCII host name that needs no IDNA processing (the fast path of 10M-entry imports)."""
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad")


_PLAIN_EMAIL = re.compile(rf"[!-?A-~]+@{_PLAIN_DOMAIN.pattern}")


def is_plain_email(email: str) -> bool:
    """True for a printable-ASCII, lower-case address that passes every rule without IDNA work: a
    shortcut callers may take before `validate_email` (the registry's 10M-line imports do)."""
    return (len(email) <= MAX_EMAIL_LENGTH and "xn--" not in email and _PLAIN_EMAIL.fullmatch(email) is not None
            and len(email.rpartition("@")[2]) <= 253)


def validate_email(raw: str) -> str:
    """The stored form of an entry's email (normalised by `normalize_email`), or InputError."""
    email = normalize_email(raw)
    check_email(email)
    return email


def check_email(email: str) -> None:
    """Raise InputError (naming the rule, never the address) unless `email`, already normalised,
    is one a mail system could deliver."""
    local, at, domain = email.rpartition("@")
    if not at:
        raise InputError(f"invalid email: no '@'; {_HINT}")
    if "@" in local:
        raise InputError(f"invalid email: more than one '@'; {_HINT}")
    if not local:
        raise InputError(f"invalid email: empty local part before '@'; {_HINT}")
    if len(email) > MAX_EMAIL_LENGTH:
        raise InputError(f"invalid email: longer than {MAX_EMAIL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ch == "\x7f" or ch in _INVISIBLE for ch in email):
        raise InputError(f"invalid email: whitespace, control or invisible character inside; {_HINT}")
    check_domain(domain)


def check_domain(domain: str) -> None:
    """The part after `@` must be an IDNA 2008 host name with at least two labels."""
    if not domain:
        raise InputError(f"invalid email: empty domain after '@'; {_HINT}")
    if len(domain) <= 253 and _PLAIN_DOMAIN.fullmatch(domain) and "xn--" not in domain:
        return
    if domain.startswith("["):
        raise InputError("invalid email: address literals like [192.0.2.1] are not accepted; use a domain name")
    labels = domain.split(".")
    if len(labels) < 2:
        raise InputError(f"invalid email: the domain has no '.' (no mail system delivers to a bare "
                         f"top-level domain); {_HINT}")
    if any(not label for label in labels):
        raise InputError(f"invalid email: empty label in the domain ('..', or a leading or trailing '.'); {_HINT}")
    try:
        ascii_domain = idna.encode(domain, uts46=False).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        if "too long" in str(exc).lower():
            raise InputError("invalid email: the domain or one of its labels is too long "
                             "(at most 63 characters a label)") from None
        raise InputError("invalid email: the domain is not a valid host name (IDNA 2008: letters and "
                         "digits of one script and '-', no '-' at either end of a label, no symbols, "
                         "emoji or '_')") from None
    if len(ascii_domain) > 253:
        raise InputError("invalid email: the domain is longer than 253 characters")
    if ascii_domain.rsplit(".", 1)[-1].isdigit():
        raise InputError(f"invalid email: the top-level domain is all digits; {_HINT}")
