from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from compliance.models import Suppression
from compliance.registry import registry_replace
from compliance.services import Decision, decide
from tests.factories import make_sender

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
NOON_IST = dt.datetime(2026, 11, 24, 12, 0, tzinfo=IST)
PROMO_CLI = "+911401234567"
BANK_CLI = "+911600123456"


def _promo(number: str = "+919876543210", *, at: dt.datetime = NOON_IST, **kw: Any) -> Decision:
    args: dict[str, Any] = {
        "purpose": "promotional",
        "sender_id": None,
        "sector": "other",
        "cli": PROMO_CLI,
        "at": at,
        "category": 3,
    }
    args.update(kw)
    return decide(number=number, **args)


@pytest.fixture
def registry(db: None) -> None:
    registry_replace(
        rows=[("9876500000", "0"), ("9876500001", "1;3"), ("9876500002", "2|5")],
        as_of=NOON_IST - dt.timedelta(hours=1),
    )


def test_promotional_call_to_fully_blocked_number_is_refused(registry: None) -> None:
    decision = _promo("+919876500000")
    assert not decision.allowed
    assert decision.reasons == ("dnd_fully_blocked",)
    assert decision.registry_version is not None


def test_partial_preference_allows_only_its_categories(registry: None) -> None:
    assert _promo("+919876500001", category=3).allowed
    assert _promo("+919876500002", category=3).reasons == ("dnd_category_blocked",)


def test_number_without_preference_is_allowed_in_hours(registry: None) -> None:
    decision = _promo("9876543210")
    assert decision.allowed
    assert decision.number == "+919876543210"
    assert decision.local_time == "2026-11-24T12:00:00+05:30"


def test_dnd_does_not_apply_to_transactional_calls(registry: None) -> None:
    decision = decide(
        number="+919876500000",
        purpose="transactional",
        sender_id=None,
        sector="other",
        cli=PROMO_CLI.replace("140", "160"),
        at=NOON_IST,
    )
    assert "dnd_fully_blocked" not in decision.reasons


def test_no_registry_loaded_fails_closed_for_promotional(db: None) -> None:
    assert "registry_stale" in _promo().reasons


def test_registry_older_than_24h_is_stale(db: None) -> None:
    registry_replace(rows=[], as_of=NOON_IST - dt.timedelta(hours=24, seconds=1))
    assert "registry_stale" in _promo().reasons


@pytest.mark.parametrize(
    ("local", "allowed"),
    [("09:59:59", False), ("10:00:00", True), ("20:59:59", True), ("21:00:00", False)],
)
def test_promotional_window_is_half_open_in_ist(registry: None, local: str, allowed: bool) -> None:
    at_ist = dt.datetime.combine(dt.date(2026, 11, 24), dt.time.fromisoformat(local), IST)
    at_utc = at_ist.astimezone(dt.UTC)  # the same instant given in UTC
    reasons = _promo(at=at_utc).reasons
    assert ("outside_calling_hours" not in reasons) is allowed


def test_transactional_call_at_night_is_allowed() -> None:
    at = dt.datetime(2026, 11, 24, 23, 30, tzinfo=IST)
    decision = decide(
        number="+919876543210",
        purpose="transactional",
        sender_id=None,
        sector="other",
        cli="+911400000001",
        at=at,
    )
    assert decision.allowed


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("purpose", "sector", "cli", "blocked"),
    [
        ("promotional", "other", "+911401234567", False),
        ("promotional", "other", "+911600123456", True),
        ("promotional", "other", "+919812345678", True),
        ("transactional", "bfsi", "+911600123456", False),
        ("transactional", "bfsi", "+911401234567", True),
        ("service_implicit", "government", "+919812345678", True),
        ("service_implicit", "other", "+919812345678", True),
    ],
)
def test_cli_series_rules(purpose: str, sector: str, cli: str, blocked: bool) -> None:
    at = dt.datetime(2026, 11, 24, 12, 0, tzinfo=IST)
    reasons = decide(
        number="+919876543210",
        purpose=purpose,
        sender_id=None,
        sector=sector,
        cli=cli,
        at=at,
        category=1,
    ).reasons
    assert ("cli_series_mismatch" in reasons) is blocked


def test_cli_outside_the_senders_pool_is_not_owned(registry: None) -> None:
    decision = _promo(owned_clis={"+911409999999"})
    assert decision.reasons == ("cli_not_owned",)


def test_invalid_and_foreign_numbers(registry: None) -> None:
    assert _promo("12345").reasons == ("invalid_number",)
    assert "out_of_jurisdiction" in _promo("+14155550100").reasons


def test_suppression_blocks_service_calls_for_that_sender_only(registry: None) -> None:
    sender, other = make_sender(), make_sender()
    Suppression.objects.create(number="+919876543210", sender=sender, reason="opt-out")
    kw: dict[str, Any] = {
        "purpose": "service_implicit",
        "sector": "other",
        "cli": PROMO_CLI,
        "at": NOON_IST,
    }
    assert "suppressed" in decide(number="+919876543210", sender_id=sender.pk, **kw).reasons
    assert "suppressed" not in decide(number="+919876543210", sender_id=other.pk, **kw).reasons


def test_every_applicable_reason_is_listed(db: None) -> None:
    at = dt.datetime(2026, 11, 24, 22, 0, tzinfo=IST)
    reasons = _promo(at=at, cli="+919812345678").reasons
    assert set(reasons) == {"registry_stale", "outside_calling_hours", "cli_series_mismatch"}


def test_time_without_offset_is_an_error(db: None) -> None:
    with pytest.raises(ValueError, match="offset"):
        _promo(at=dt.datetime(2026, 11, 24, 12, 0))
