"""Hypothesis profiles: `ci` (the default: every property, a number of examples the whole suite
affords on 2 cores) and `thorough` (many more examples, before a release or after touching the
matching rules): `GDPR_SWEEP_HYPOTHESIS=thorough ./scripts/test tests/reliability`.

A test that needs its own count writes `@settings(max_examples=examples(ci=N, thorough=M))`: under
`ci` N, under `thorough` M."""

from __future__ import annotations

import os

PROFILE_VARIABLE = "GDPR_SWEEP_HYPOTHESIS"


def profile_name() -> str:
    return os.environ.get(PROFILE_VARIABLE, "ci")


def examples(ci: int, thorough: int) -> int:
    """The example count of one property under the profile in use."""
    return thorough if profile_name() == "thorough" else ci


def register_profiles() -> None:
    from hypothesis import settings

    settings.register_profile("ci", max_examples=50, deadline=None)
    settings.register_profile("thorough", max_examples=500, deadline=None)
    settings.load_profile(profile_name())
