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
