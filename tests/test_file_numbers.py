"""file_e164 gives to_e164's answer, only faster, for every spelling a file may use."""

from __future__ import annotations

import random

import pytest

from compliance.file_numbers import file_e164
from compliance.numbers import InvalidNumber, to_e164


def _answer(fn: object, raw: str) -> str:
    try:
        return fn(raw)  # type: ignore[operator,no-any-return]
    except InvalidNumber:
        return "invalid"


def _spellings(rng: random.Random) -> list[str]:
    out = []
    for _ in range(2000):
        national = str(rng.randrange(10**9, 10**10))  # every leading digit 1-9
        out += [national, "0" + national, "+91" + national, "91" + national, f" {national} "]
        out.append(national[:9])  # too short
        out.append("0" + national[1:] + "1")  # eleven digits with a trunk 0 of another shape
    out += ["+910987654321", "00987654321", "0987654321", "+9198765432101", "abcdefghij"]
    out += ["९८७६५४३२१०", "98765 43210", "+91-98765-43210"]
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_file_e164_agrees_with_to_e164(seed: int) -> None:
    def slow(raw: str) -> str:
        return to_e164(raw, region="IN")

    for raw in _spellings(random.Random(seed)):
        assert _answer(file_e164, raw) == _answer(slow, raw), raw
