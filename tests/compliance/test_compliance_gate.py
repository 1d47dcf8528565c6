"""compliance.services.decide against Part 1 of the policy, one behaviour per test."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from compliance.models import AuditEntry, Consent, Sender, Suppression
from compliance.registry import registry_replace
from compliance.services import Decision, decide
from tests.helpers.factories import make_sender

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
NOON_IST = dt.datetime(2026, 11, 24, 12, 0, tzinfo=IST)
PROMO_CLI = "+911401234567"
SERVICE_CLI = "+911600123456"
NUMBER = "+919876543210"
BLOCKED = "+919876500000"  # '0'
PARTIAL = "+919876500001"  # accepts 1 and 3
OTHER_PARTIAL = "+919876500002"  # accepts 2 and 5

pytestmark = pytest.mark.django_db


@pytest.fixture
def sender() -> Sender:
    return make_sender(dlt_entity_id="1101SENDER000001", sector="other")


@pytest.fixture
def registry() -> None:
    registry_replace(
        rows=[("9876500000", "0"), ("9876500001", "1;3"), ("9876500002", "2|5")],
        as_of=NOON_IST - dt.timedelta(hours=1),
    )


def check(number: str = NUMBER, **overrides: Any) -> Decision:
    args: dict[str, Any] = {
        "purpose": "promotional",
        "sender_dlt_id": "1101SENDER000001",
        "sector": "other",
        "cli": PROMO_CLI,
        "at": NOON_IST,
        "category": 3,
    }
    return decide(number=number, **(args | overrides))


def consent(sender: Sender, scope: str = "promotional", **times: dt.datetime) -> Consent:
    values: dict[str, Any] = {"given_at": NOON_IST - dt.timedelta(days=1)} | times
    return Consent.objects.create(
        number=BLOCKED if scope == "promotional" else NUMBER, sender=sender, scope=scope,
        reference=f"DLT-CONSENT-{Consent.objects.count() + 1}", **values,
    )  # fmt: skip


# -- numbers -------------------------------------------------------------------------------------
@pytest.mark.parametrize("given", ["+919876543210", "9876543210", "09876543210", "919876543210",
                                   "+91 98765-43210"])  # fmt: skip
def test_number_formats_all_mean_the_same_number(
    sender: Sender, registry: None, given: str
) -> None:
    decision = check(given)
    assert decision.number == "+919876543210"
    assert decision.allowed


@pytest.mark.parametrize("given", ["12345", "abc", "", "+91987654321"])
def test_invalid_number_is_a_decision_not_an_error(sender: Sender, given: str) -> None:
    assert check(given).reasons == ("invalid_number",)


def test_foreign_number_is_out_of_jurisdiction(sender: Sender, registry: None) -> None:
    assert check("+14155550100").reasons[0] == "out_of_jurisdiction"


# -- DND registry and consent --------------------------------------------------------------------
def test_promotional_call_to_fully_blocked_number_is_refused(
    sender: Sender, registry: None
) -> None:
    decision = check(BLOCKED)
    assert decision.reasons == ("dnd_fully_blocked",)
    assert decision.registry_version is not None


def test_partial_preference_allows_only_its_categories(sender: Sender, registry: None) -> None:
    assert check(PARTIAL, category=3).allowed
    assert check(OTHER_PARTIAL, category=3).reasons == ("dnd_category_blocked",)


def test_dnd_does_not_apply_to_other_purposes(sender: Sender, registry: None) -> None:
    for purpose in ("service_implicit", "transactional", "government"):
        assert check(BLOCKED, purpose=purpose, cli=SERVICE_CLI).allowed, purpose


def test_valid_consent_overrides_dnd_and_is_recorded(sender: Sender, registry: None) -> None:
    given = consent(sender)
    decision = check(BLOCKED)
    assert decision.allowed
    assert decision.consent == given.reference


def test_consent_from_another_sender_does_not_override(sender: Sender, registry: None) -> None:
    consent(make_sender())
    assert check(BLOCKED).reasons == ("dnd_fully_blocked",)


@pytest.mark.parametrize(
    ("times", "allowed"),
    [
        ({"given_at": NOON_IST}, True),  # given at that very second: valid
        ({"given_at": NOON_IST + dt.timedelta(seconds=1)}, False),  # not yet given
        ({"expires_at": NOON_IST + dt.timedelta(seconds=1)}, True),
        ({"expires_at": NOON_IST}, False),  # expiry is exclusive
        ({"revoked_at": NOON_IST + dt.timedelta(seconds=1)}, True),
        ({"revoked_at": NOON_IST}, False),  # revoked at that second: gone
        ({"revoked_at": NOON_IST - dt.timedelta(days=1, seconds=-1)}, False),
    ],
)
def test_consent_validity_edges(sender: Sender, registry: None, times: dict, allowed: bool) -> None:
    consent(sender, **times)
    assert check(BLOCKED).allowed is allowed


def test_promotional_consent_does_not_cover_service_explicit(sender: Sender) -> None:
    Consent.objects.create(number=NUMBER, sender=sender, scope="promotional", reference="P1",
                           given_at=NOON_IST - dt.timedelta(days=1))  # fmt: skip
    assert check(purpose="service_explicit", cli=SERVICE_CLI).reasons == ("no_consent",)


def test_service_explicit_needs_its_consent(sender: Sender) -> None:
    assert check(purpose="service_explicit", cli=SERVICE_CLI).reasons == ("no_consent",)
    given = consent(sender, scope="service_explicit")
    decision = check(purpose="service_explicit", cli=SERVICE_CLI)
    assert decision.allowed and decision.consent == given.reference


def test_no_registry_loaded_fails_closed_for_promotional(sender: Sender) -> None:
    assert check().reasons == ("registry_stale",)


@pytest.mark.parametrize(
    ("age", "stale"),
    [(dt.timedelta(hours=24), False), (dt.timedelta(hours=24, seconds=1), True)],
)
def test_registry_older_than_24h_is_stale(sender: Sender, age: dt.timedelta, stale: bool) -> None:
    registry_replace(rows=[], as_of=NOON_IST - age)
    assert ("registry_stale" in check().reasons) is stale


def test_stale_registry_does_not_block_service_calls(sender: Sender) -> None:
    assert check(purpose="service_implicit", cli=SERVICE_CLI).allowed


# -- suppression ---------------------------------------------------------------------------------
def test_suppression_for_this_sender_or_all_senders(sender: Sender, registry: None) -> None:
    Suppression.objects.create(number=NUMBER, sender=sender, reason="opt-out")
    assert check().reasons == ("suppressed",)
    assert check(sender_dlt_id=make_sender().dlt_entity_id).allowed  # another sender
    Suppression.objects.create(number=PARTIAL, sender=None, reason="internal DNC")
    assert check(PARTIAL, sender_dlt_id=make_sender().dlt_entity_id).reasons == ("suppressed",)


def test_suppression_never_blocks_transactional_or_government(sender: Sender) -> None:
    Suppression.objects.create(number=NUMBER, sender=None)
    assert check(purpose="service_implicit", cli=SERVICE_CLI).reasons == ("suppressed",)
    assert check(purpose="transactional", cli=SERVICE_CLI).allowed
    assert check(purpose="government", cli=SERVICE_CLI).allowed


# -- calling hours -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("purpose", "local", "allowed"),
    [
        ("promotional", "09:59:59", False), ("promotional", "10:00:00", True),
        ("promotional", "20:59:59", True), ("promotional", "21:00:00", False),
        ("service_implicit", "08:59:59", False), ("service_implicit", "09:00:00", True),
        ("service_explicit", "20:59:59", True), ("service_explicit", "21:00:00", False),
        ("transactional", "23:30:00", True), ("government", "03:00:00", True),
    ],
)  # fmt: skip
@pytest.mark.parametrize("given_in", ["IST", "UTC"])
def test_windows_are_half_open_in_the_callees_time(
    sender: Sender, registry: None, purpose: str, local: str, allowed: bool, given_in: str
) -> None:
    at = dt.datetime.combine(dt.date(2026, 11, 24), dt.time.fromisoformat(local), IST)
    if given_in == "UTC":
        at = at.astimezone(dt.UTC)
        registry_replace(rows=[], as_of=at - dt.timedelta(hours=1))
    else:
        registry_replace(rows=[], as_of=at - dt.timedelta(hours=1))
    consent(sender, scope="service_explicit")
    cli = PROMO_CLI if purpose == "promotional" else SERVICE_CLI
    decision = check(purpose=purpose, cli=cli, at=at)
    assert ("outside_calling_hours" not in decision.reasons) is allowed
    assert decision.local_time == f"2026-11-24T{local}+05:30"


def test_promotional_window_is_a_setting(sender: Sender, registry: None, settings: Any) -> None:
    settings.COMPLIANCE_PROMO_WINDOW = "09:00-21:00"
    at = dt.datetime(2026, 11, 24, 9, 30, tzinfo=IST)
    registry_replace(rows=[], as_of=at)
    assert check(at=at).allowed


# -- caller ID -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("purpose", "sector", "cli", "blocked"),
    [
        ("promotional", "other", "+911401234567", False),
        ("promotional", "other", "01401234567", False),
        ("promotional", "other", "+911600123456", True),
        ("promotional", "other", "+919812345678", True),
        ("transactional", "bfsi", "+911600123456", False),
        ("transactional", "bfsi", "+911401234567", True),
        ("service_implicit", "government", "+919812345678", True),
        ("service_implicit", "bfsi", "+911401234567", True),
        ("service_implicit", "other", "+919812345678", True),  # 10-digit mobile: never
        ("service_implicit", "other", "+911401234567", False),
        ("government", "government", "+919812345678", False),  # not commercial
    ],
)
def test_cli_series_rules(
    sender: Sender, registry: None, purpose: str, sector: str, cli: str, blocked: bool
) -> None:
    reasons = check(purpose=purpose, sector=sector, cli=cli).reasons
    assert ("cli_series_mismatch" in reasons) is blocked


def test_cli_outside_the_senders_pool_is_not_owned(sender: Sender, registry: None) -> None:
    assert check(owned_clis={"+911409999999"}).reasons == ("cli_not_owned",)
    assert check(owned_clis={PROMO_CLI}).allowed


# -- frequency caps ------------------------------------------------------------------------------
# The caps count today's audit entries, which the database stamps with the real time (and will
# not let anyone change), so these tests check at the real current time.
def _placed(sender: Sender, attempts: int, *, answered: int = 0) -> None:
    common = {"number": NUMBER, "sender_dlt_id": sender.dlt_entity_id, "purpose": "promotional"}
    for i in range(attempts):
        AuditEntry.objects.create(kind="decision", allowed=True, attempt_id=i, **common)
    for i in range(answered):
        AuditEntry.objects.create(
            kind="outcome", attempt_id=i, detail={"disposition": "answered"}, **common
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def test_three_attempts_a_day_per_sender(sender: Sender) -> None:
    _placed(sender, 2)
    assert "frequency_cap" not in check(at=_now()).reasons
    _placed(sender, 1)
    assert "frequency_cap" in check(at=_now()).reasons
    assert (
        "frequency_cap" not in check(at=_now(), sender_dlt_id=make_sender().dlt_entity_id).reasons
    )


def test_one_answered_promotional_call_a_day(sender: Sender) -> None:
    _placed(sender, 1, answered=1)
    assert "frequency_cap" in check(at=_now()).reasons
    service = check(at=_now(), purpose="service_implicit", cli=SERVICE_CLI)
    assert "frequency_cap" not in service.reasons


def test_caps_reset_at_the_callees_midnight(sender: Sender) -> None:
    _placed(sender, 3)
    now_ist = _now().astimezone(IST)
    next_midnight = (now_ist + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0)
    assert "frequency_cap" in check(at=next_midnight - dt.timedelta(seconds=1)).reasons
    assert "frequency_cap" not in check(at=next_midnight).reasons


def test_caps_are_settings(sender: Sender, settings: Any) -> None:
    settings.COMPLIANCE_MAX_ATTEMPTS_PER_DAY = 5
    _placed(sender, 3)
    assert "frequency_cap" not in check(at=_now()).reasons


def test_transactional_calls_are_not_capped(sender: Sender) -> None:
    _placed(sender, 5)
    assert check(at=_now(), purpose="transactional", cli=SERVICE_CLI).allowed


# -- all together --------------------------------------------------------------------------------
def test_every_applicable_reason_is_listed(sender: Sender) -> None:
    Suppression.objects.create(number=NUMBER, sender=sender)
    at = dt.datetime(2026, 11, 24, 22, 0, tzinfo=IST)
    reasons = check(at=at, cli="+919812345678", owned_clis=set()).reasons
    assert set(reasons) == {"suppressed", "registry_stale", "outside_calling_hours",
                            "cli_series_mismatch", "cli_not_owned"}  # fmt: skip


def test_time_without_offset_is_an_error(sender: Sender) -> None:
    with pytest.raises(ValueError, match="offset"):
        check(at=dt.datetime(2026, 11, 24, 12, 0))


def test_unknown_purpose_is_an_error(sender: Sender) -> None:
    with pytest.raises(ValueError, match="purpose"):
        check(purpose="marketing")
