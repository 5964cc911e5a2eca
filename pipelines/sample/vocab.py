"""Sample data vocabularies, shares and schemas (the knobs of `pipelines.sample.generate`)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa

PROFILES_PER_FILE = 250_000
PROFILE_BATCH_ROWS = 65_536
"""Profiles built and written per row group."""
EVENT_BATCH_ROWS = 131_072
"""Events built and written per row group."""

_WRITER_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "version": "2.6",
    "data_page_version": "1.0",
    "use_dictionary": True,
    "write_statistics": True,
}

# ---------------------------------------------------------------------------------------------
# Schemas (Optimizely shapes).

_TS = pa.timestamp("us", tz="UTC")
PROFILE_SCHEMA = pa.schema([
    ("ProfileId", pa.string()),
    ("UserId", pa.string()),
    ("DeviceIds", pa.list_(pa.string())),
    ("Name", pa.string()),
    ("Scope", pa.string()),
    ("FirstSeen", _TS),
    ("LastSeen", _TS),
    ("UpdateTime", _TS),
    ("Visits", pa.int32()),
    ("VisitorGroups", pa.list_(pa.string())),
    ("Info", pa.struct([("Email", pa.string()), ("Website", pa.string()), ("Picture", pa.string()),
                        ("Country", pa.string())])),
    ("ContactInformation", pa.list_(pa.string())),
    ("Payload", pa.struct([("Segment", pa.string()), ("Score", pa.decimal128(10, 2))])),
])
EVENT_SCHEMA = pa.schema([
    ("DeviceId", pa.string()),
    ("EventType", pa.string()),
    ("Value", pa.string()),
    ("PageUri", pa.string()),
    ("RemoteAddress", pa.string()),
    ("EventTime", _TS),
    ("CountryCode", pa.string()),
    ("Scope", pa.string()),
    ("User", pa.struct([("Name", pa.string()), ("Email", pa.string()), ("UserId", pa.string()),
                        ("Info", pa.struct([("Country", pa.string())]))])),
    ("Payload", pa.struct([("Amount", pa.decimal128(12, 2)), ("Items", pa.list_(pa.string()))])),
])

# ---------------------------------------------------------------------------------------------
# Vocabularies and shares.

_NAMES_FIRST = [("Anna", "anna"), ("Erik", "erik"), ("Åsa", "asa"), ("Jörg", "jorg"), ("Maria", "maria"),
                ("Lars", "lars"), ("Sofia", "sofia"), ("Jonas", "jonas"), ("Zoë", "zoe"), ("Liam", "liam"),
                ("Emma", "emma"), ("Noah", "noah"), ("Ingrid", "ingrid"), ("Pierre", "pierre"),
                ("Chloé", "chloe"), ("Mateusz", "mateusz"), ("Aino", "aino"), ("Oskar", "oskar"),
                ("Freya", "freya"), ("Hugo", "hugo"), ("Nora", "nora"), ("Finn", "finn")]
_NAMES_LAST = [("Berg", "berg"), ("Lindqvist", "lindqvist"), ("Müller", "muller"), ("Nielsen", "nielsen"),
               ("Jansen", "jansen"), ("Smith", "smith"), ("Dubois", "dubois"), ("Kowalski", "kowalski"),
               ("Virtanen", "virtanen"), ("Andersson", "andersson"), ("Öberg", "oberg"), ("Hansen", "hansen"),
               ("Schmidt", "schmidt"), ("Brown", "brown"), ("Martin", "martin"), ("Nowak", "nowak"),
               ("Korhonen", "korhonen"), ("de Vries", "devries"), ("Larsen", "larsen"), ("Fischer", "fischer")]
_FIRST_DISPLAY = pa.array([d for d, _ in _NAMES_FIRST])
_FIRST_ASCII = pa.array([a for _, a in _NAMES_FIRST])
_LAST_DISPLAY = pa.array([d for d, _ in _NAMES_LAST])
_LAST_ASCII = pa.array([a for _, a in _NAMES_LAST])

DOMAINS = ("example.com", "mail.example.org", "inbox.test", "post.example.net", "webmail.test")
_DOMAIN_FORMS = pa.array([form for d in DOMAINS for form in (
    d,
    ".".join(label.capitalize() for label in d.split(".")),
    ".".join(label.capitalize() for label in d.split(".")[:-1]) + "." + d.split(".")[-1].upper(),
    d.upper(),
)])
"""Four spellings per domain: lower, Title.Case, Title.UPPER-TLD, UPPER."""

# Email spellings: (local part form: 0 lower, 1 Title, 2 UPPER; domain form; padded with spaces).
_EMAIL_LOCAL_FORM = np.array([0, 1, 1, 2, 0, 1, 2], dtype=np.int8)
_EMAIL_DOMAIN_FORM = np.array([0, 1, 2, 3, 0, 2, 3], dtype=np.int64)
_EMAIL_PADDED = np.array([False, False, False, False, True, True, True])
_PROFILE_EMAIL_P = [0.30, 0.25, 0.15, 0.05, 0.10, 0.10, 0.05]
_EVENT_EMAIL_P = [0.40, 0.10, 0.10, 0.25, 0.05, 0.05, 0.05]
_PADS_LEFT = pa.array(["  ", " ", ""])
_PADS_RIGHT = pa.array([" ", "", "  "])

COUNTRIES = ("SE", "NO", "DK", "FI", "DE", "NL", "GB", "FR", "PL", "US")
_COUNTRIES = pa.array(COUNTRIES)

SCOPES = (None, "", "  ", "DefaultScope", "commercesite", "CommerceSite", "outlet",
          "COMMERCESITE", "OUTLET", "defaultscope")
"""Scope spellings; profiles use the first seven, events also the case variants after them."""
_SCOPES = pa.array(SCOPES, pa.string())
_PROFILE_SCOPE_P = [0.12, 0.05, 0.03, 0.15, 0.30, 0.15, 0.20]
_SCOPE_VARIANT = np.array([1, 0, 1, 9, 7, 4, 8, 4, 6, 3], dtype=np.int8)
"""Another spelling of the same scope (same comparison key): None <-> "", "commercesite" -> "COMMERCESITE"."""
_COMMERCESITE_CODES = (4, 5)
_EVENT_SCOPE_VARIANT_SHARE = 0.15

EVENT_TYPES = ("pageview", "click", "search", "add_to_cart", "purchase", "login", "signup")
_EVENT_TYPES = pa.array(EVENT_TYPES)
_EVENT_TYPE_P = [0.55, 0.18, 0.08, 0.08, 0.05, 0.04, 0.02]
_PURCHASE, _ADD_TO_CART = EVENT_TYPES.index("purchase"), EVENT_TYPES.index("add_to_cart")
_VALUE_PREFIX = pa.array(["product-", "button-", "query-", "sku-", "order-", "session-", "session-"])
_PATH_PREFIX = pa.array(["/products/", "/products/", "/search?q=term", "/cart?add=sku-",
                         "/checkout/confirmation/", "/account/login?s=", "/account/signup?s="])
_SITE = "https://shop.example.com"

_VISITOR_GROUPS = pa.array(["returning", "newsletter", "vip", "mobile", "b2b", "cart-abandoner", "outlet"])
_SEGMENTS = pa.array(["bronze", "silver", "gold", "platinum"])
_SEGMENT_P = [0.5, 0.3, 0.15, 0.05]

_LEAD_SHARE = 0.20            # profiles without UserId
_INFO_NULL_SHARE = 0.02       # profiles whose Info struct is null
_EMAIL_NULL_SHARE = 0.03      # profiles whose Info.Email is null
_DEVICE_COUNT_P = [0.15, 0.45, 0.28, 0.12]  # 0-3 listed devices
_DEVICE_IDS_NULL_SHARE = 0.02
_EXTRA_DEVICE_SHARE = 0.25    # profiles with listed devices that also use one seen only in events
_EXTRA_DEVICE_SHARE_UNLISTED = 0.80  # the same, for profiles without listed devices
_MAX_ACTIVE_DAYS = 5

# Event sources (per planned event): a profile's event, a stranger (no user, unknown or no device),
# or a foreign email (a user struct whose email belongs to no profile).
_FROM_PROFILE, _STRANGER, _FOREIGN = 0, 1, 2
_SOURCE_P = [0.945, 0.05, 0.005]
_ANONYMOUS_SHARE = 0.30       # of a profile's events with a listed device: User null
_EXTRA_DEVICE_USE = 0.20      # identified events on the profile's events-only device
_NULL_DEVICE_SHARE = 0.03     # identified events without DeviceId
_STRANGER_NULL_DEVICE = 0.20
_HOUR_US = 3600 * 1_000_000
_SESSION_SD_US = _HOUR_US * 25 // 60
_SESSION_FROM_US, _SESSION_TO_US = 2 * _HOUR_US, 22 * _HOUR_US  # session centres, into the day

_DAY_US = 86_400 * 1_000_000
_EPOCH = date(1970, 1, 1)
_MASK48 = np.uint64((1 << 48) - 1)
_DEVICE_MULT = np.uint64(0x5DEECE66D)  # odd: k -> k * MULT + key is a bijection modulo 2**48
_UNKNOWN_DEVICE_SPAN = 1 << 40

# Stream tags keep the seeded generators apart. SeedSequence pads entropy with zeros, so tags are
# non-zero and sit in a fixed position.
_STREAM_PROFILES, _STREAM_DAY, _STREAM_EVENT_BATCH = 1, 2, 3

_PROFILE_FILE_RE = re.compile(r"profiles-\d{4,}\.parquet")
_EVENT_FILE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\.parquet")
