"""§2 "Email": what an entry's email may be (pipelines/core/email_rules.py), and the registry's
ASCII shortcut agrees with the full check."""

from __future__ import annotations

import pytest

from pipelines.core.email_rules import is_plain_email, validate_email
from pipelines.core.errors import InputError

GOOD = ["anna@example.com", "o'brien+tag@sub.example.co.uk", "a@b.io", "x@xn--bcher-kva.de", "zoë@bücher.de",
        "  Anna@Example.COM\u00a0", "1@2.example", "a-b_c.d@ex-ample.museum", "x@" + "a" * 63 + ".com"]
BAD = {
    "a@@b.com": "more than one '@'", "a@b": "no '.'", "x@\U0001f600.com": "not a valid host name",
    "an na@b.com": "", "a\u200bb@example.com": "", "@b.com": "", "a@": "", "nobody": "",
    "x" * 250 + "@example.com": "", "a@-b.com": "host name", "a@b-.com": "host name", "a@ex_ample.com": "host name",
    "a@example.com.": "empty label", "a@.example.com": "empty label", "a@example..com": "empty label",
    "a@192.0.2.1": "all digits", "a@[192.0.2.1]": "address literals", "a@xn--zz.com": "host name",
    "a@" + "a" * 64 + ".com": "too long", "a@b\x00c.com": "",
}


@pytest.mark.parametrize("email", GOOD)
def test_deliverable_addresses_pass_normalised(email):
    out = validate_email(email)
    assert out == out.strip() and out == validate_email(out)


@pytest.mark.parametrize(("email", "reason"), BAD.items())
def test_undeliverable_addresses_are_refused_naming_the_rule_not_the_address(email, reason):
    with pytest.raises(InputError) as info:
        validate_email(email)
    message = str(info.value)
    assert message.startswith("invalid email") and reason in message
    assert email.strip() not in message


@pytest.mark.parametrize("email", [*GOOD, *BAD])
def test_the_ascii_shortcut_never_accepts_what_the_full_check_refuses(email):
    normalised = email.strip(" ").lower()
    if is_plain_email(normalised):
        assert validate_email(email) == normalised
