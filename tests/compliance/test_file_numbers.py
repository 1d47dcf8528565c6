"""file_e164 gives to_e164's answer, only faster, for every spelling a file may use."""

from __future__ import annotations

import random
from unittest import mock

import pytest

from compliance.file_numbers import file_e164
from compliance.numbers import InvalidNumber, to_e164


def _answer(fn: object, raw: str) -> str:
    try:
        return fn(raw)  # type: ignore[operator,no-any-return]
    except InvalidNumber:
        return "invalid"


def _slow(raw: str) -> str:
    return to_e164(raw, region="IN")


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


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_file_e164_agrees_with_to_e164(seed: int) -> None:
    def slow(raw: str) -> str:
        return to_e164(raw, region="IN")

    for raw in _spellings(random.Random(seed)):
        assert _answer(file_e164, raw) == _answer(slow, raw), raw


@pytest.mark.slow
def test_every_four_digit_prefix_gets_is_valid_numbers_answer() -> None:
    """The ten-digit check is built from phonenumbers' metadata; each national prefix (the
    patterns go by prefix) with random endings gets to_e164's answer."""
    rng = random.Random(11)
    for prefix in range(1000, 10000):
        for _ in range(4):
            national = f"{prefix}{rng.randrange(10**6):06d}"
            assert _answer(file_e164, national) == _answer(_slow, national), national


def test_the_usual_spellings_need_neither_the_parse_nor_is_valid_number() -> None:
    """The check that made a suppression file's rows cost 13 us each (is_valid_number tries
    up to ten patterns, compiled again through re's cache) is not asked for these."""
    refuse = mock.Mock(side_effect=AssertionError("called"))
    with (
        mock.patch("phonenumbers.is_valid_number", refuse),
        mock.patch("compliance.file_numbers.to_e164", refuse),
    ):
        assert file_e164("9876543210") == "+919876543210"
        assert file_e164("09876543210") == "+919876543210"
        assert file_e164("+911123456789") == "+911123456789"
