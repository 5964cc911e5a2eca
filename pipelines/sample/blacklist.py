"""The sample blacklist: entries picked from the population, in the Optimizely list format."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.sample.population import _Population
from pipelines.sample.strings import _normalized_email
from pipelines.sample.vocab import _COMMERCESITE_CODES


def _blacklist_items(rng: np.random.Generator, pop: _Population, count: int) -> list[dict[str, Any]]:
    """About half unscoped emails, the rest scoped to `commercesite` except one UserId-only entry.

    Picks profiles that have an email (or a UserId) and a listed device, so linking matters.
    Unscoped entries alternate between an omitted Scope and an explicit null.
    """
    unscoped = (count + 1) // 2
    by_user_id = 1 if count >= 2 else 0
    scoped = count - unscoped - by_user_id
    with_device = pop.device_count > 0
    commercesite = np.isin(pop.scope, _COMMERCESITE_CODES)
    taken: set[int] = set()
    picks = {
        "scoped": _pick(rng, np.flatnonzero(pop.has_email & with_device & commercesite), scoped, taken),
        "unscoped": _pick(rng, np.flatnonzero(pop.has_email & with_device), unscoped, taken),
        "user_id": _pick(rng, np.flatnonzero(pop.has_user & with_device), by_user_id, taken),
    }
    items: list[dict[str, Any]] = []
    for i, profile in enumerate(picks["unscoped"]):
        item: dict[str, Any] = {"Email": _normalized_email(pop, profile)}
        if i % 2:
            item["Scope"] = None
        items.append(item)
    items += [{"Email": _normalized_email(pop, p), "Scope": "commercesite"} for p in picks["scoped"]]
    width = max(7, len(str(pop.size)))
    items += [{"UserId": f"u{p + 1:0{width}d}"} for p in picks["user_id"]]
    return items


def _pick(rng: np.random.Generator, pool: np.ndarray, count: int, taken: set[int]) -> list[int]:
    """`count` distinct profiles from `pool`, none already taken; ValueError if too few."""
    pool = pool[~np.isin(pool, sorted(taken))]
    if len(pool) < count:
        raise ValueError(f"not enough suitable profiles for a blacklist sample of this size "
                         f"(need {count} more, found {len(pool)}); generate more profiles")
    chosen = [int(p) for p in rng.choice(pool, count, replace=False)] if count else []
    taken.update(chosen)
    return chosen
