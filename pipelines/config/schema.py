"""The JSON Schema of the configuration file, made from the models in `pipelines/config/settings.py`.

`gdpr-sweep config schema` writes it; the committed copy is docs/config.schema.json (a test keeps it
up to date), so editors validate `gdpr-sweep.toml` while it is typed (Taplo / Even Better TOML, or a
`#:schema` comment on the file's first line). The schema states types, ranges, patterns and allowed
values; rules across keys (at least one of `email` / `user_id`, where folders lie) are checked
when the file is loaded.
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.config.settings import ConfigFile

SCHEMA_ID = "https://github.com/gdpr-sweep/gdpr-sweep/blob/main/docs/config.schema.json"
SCHEMA_PATH = "docs/config.schema.json"
"""Where the committed copy lives, relative to the repository root."""


def config_schema() -> dict[str, Any]:
    """The schema as a dict: draft 2020-12, every key with its type, constraints and description."""
    schema = _toml_only(ConfigFile.model_json_schema(mode="validation"))
    return {**schema, "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "gdpr-sweep configuration (gdpr-sweep.toml)"}


def _toml_only(node: Any) -> Any:
    """TOML has no null: an optional key is one that may be left out, so `anyOf [X, null]` becomes X
    and `"default": null` goes. The field's own description wins over its type's."""
    if isinstance(node, list):
        return [_toml_only(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _toml_only(value) for key, value in node.items()}
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        node = {**(rest[0] if len(rest) == 1 else {"anyOf": rest}),
                **{key: value for key, value in node.items() if key != "anyOf"}}
    if "default" in node and node["default"] is None:
        del node["default"]
    return node


def config_schema_text() -> str:
    """The schema as the committed file holds it: sorted keys, two-space indent, final newline."""
    return json.dumps(config_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
