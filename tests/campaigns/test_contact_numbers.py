from __future__ import annotations

import random

import pytest

from campaigns.services.contacts_import import _number
from compliance.numbers import InvalidNumber, number_info


def _shapes(rng: random.Random) -> list[str]:
    ten = f"{rng.randrange(10**9, 10**10)}"
    mobile = f"{rng.choice('6789')}{rng.randrange(10**9):09d}"
    return [
        ten,
        mobile,
        "+91" + mobile,
        "0" + mobile,
        "91" + mobile,
        "91" + f"{rng.randrange(10**8):08d}",
        "911" + f"{rng.randrange(10**7):07d}",
        "+91" + ten,
        "0" + ten,
        f"{rng.randrange(10**7, 10**12)}",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_the_fast_path_for_plain_indian_numbers_agrees_with_number_info(seed: int) -> None:
    # Whatever shortcut _number takes, its answer must be number_info's: the same E.164 (so
    # DND and suppression lookups match) and the same zone (so calling hours do).
    rng = random.Random(seed)
    for _ in range(500):
        for raw in _shapes(rng):
            try:
                info = number_info(raw, region="IN", fallback_tz="UTC")
                expected: tuple[str, str] | None = (info.e164, info.time_zone)
            except InvalidNumber:
                expected = None
            got = _number(raw, "IN", "UTC")
            assert (got and (got.e164, got.time_zone)) == expected, raw


@pytest.mark.slow
def test_every_plain_mobile_prefix_is_judged_as_number_info_judges_it() -> None:
    # The fast path's numbering-plan check against phonenumbers' full one: three numbers under
    # each 4-digit prefix a plain mobile can have, so every branch of the plan is reached.
    rng = random.Random(11)
    for prefix in range(6000, 10_000):
        for _ in range(3):
            raw = f"{prefix}{rng.randrange(10**6):06d}"
            try:
                expected: str | None = number_info(raw, region="IN", fallback_tz="UTC").e164
            except InvalidNumber:
                expected = None
            got = _number(raw, "IN", "UTC")
            assert (got and got.e164) == expected, raw
