"""Settings that cannot hurt anyone (issue #10): campaigns, trunks and caller IDs are checked in
the admin form and on every save from code; retry scheduling survives what was stored before."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from campaigns.models import CallerId, Campaign, Trunk
from campaigns.retry import retry_delay
from campaigns.validation import agent_url_error, retry_delays_errors, sip_uri_error
from tests.helpers.admin import admin_form_data
from tests.helpers.factories import make_caller_id, make_campaign, make_sender, make_trunk

# -- the rules, as pure functions ---------------------------------------------------------------


@pytest.mark.parametrize(
    "delays", [{}, {"busy": 600}, {"busy": 1, "no_answer": 3600, "failed": 604800}]
)
def test_retry_delays_that_are_accepted(delays: dict) -> None:
    assert retry_delays_errors(delays) == []


@pytest.mark.parametrize(
    ("delays", "complaint"),
    [
        ({"busy": "ten minutes"}, '"ten minutes" is not a whole number of seconds'),
        ({"busy": True}, "true is not a whole number"),  # bool is an int to Python
        ({"busy": 0}, "0 is not a whole number of seconds from 1 to 604800"),
        ({"busy": -5}, "-5 is not"),
        ({"busy": 604801}, "604801 is not"),
        ({"busy": 600.5}, "600.5 is not"),
        ({"busy": None}, "null is not"),
        ({"answered": 60}, "'answered' is never retried"),
        ({"blocked": 60}, "'blocked' is never retried"),
        (["busy", 600], "Must be a JSON object"),
        ("600", "Must be a JSON object"),
        (None, "Must be a JSON object"),
    ],
)
def test_retry_delays_that_are_refused(delays: object, complaint: str) -> None:
    (error,) = retry_delays_errors(delays)
    assert complaint in error


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("", None),
        ("ws://127.0.0.1:8765", None),
        ("wss://agent.example.com/stream?x=1", None),
        ("http://agent.example.com", "must start with ws:// or wss://"),
        ("https://agent.example.com", "must start with ws:// or wss://"),
        ("agent.example.com", "must start with ws:// or wss://"),
        ("ws://", "must name a host"),
        ("wss:///stream", "must name a host"),
        ("ws://agent .example.com", "must not contain spaces"),
        ("ws://agent.example.com\n", "must not contain spaces"),
        ("ws://agent.example.com:99999", "Not a valid URL"),
    ],
)
def test_agent_url_rules(url: str, complaint: str | None) -> None:
    error = agent_url_error(url)
    assert (error is None) if complaint is None else (error is not None and complaint in error)


@pytest.mark.parametrize(
    "uri",
    [
        "sip:127.0.0.1",
        "sip:127.0.0.1:5060",
        "sips:sbc.example.com:5061",
        "SIP:Carrier.Example.com",
        "sip:[::1]:5080",
        "sip:sbc.example.com.:1",
        "sip:sbc:65535",
    ],
)
def test_sip_uris_that_are_accepted(uri: str) -> None:
    assert sip_uri_error(uri) is None


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "127.0.0.1:5060",
        "tel:+911401234567",
        "http://sbc.example.com",
        "sip:",
        "sip:user@sbc.example.com",  # the engine puts the callee's number there
        "sip:sbc.example.com;transport=tcp",  # the transport has its own field
        "sip:sbc.example.com:0",
        "sip:sbc.example.com:65536",
        "sip:sbc.example.com:5060x",
        "sip:sbc.example.com:",
        "sip:sbc example.com",
        "sip:-sbc-.example.com",
        "sip:sbc..example.com",
        "sip:[::1]x",
        "sip:[not-v6]:5060",
        "sip:sbc.example.com/path",
    ],
)
def test_sip_uris_that_are_refused(uri: str) -> None:
    assert sip_uri_error(uri) is not None


# -- on every save from code --------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"retry_delays": {"busy": "ten minutes"}}, "retry_delays"),
        ({"retry_delays": {"answered": 60}}, "retry_delays"),
        ({"agent_url": "http://agent.example.com"}, "agent_url"),
        ({"window_start": dt.time(9), "window_end": dt.time(9)}, "window_end"),
        ({"category": 9, "purpose": "promotional"}, "category"),  # the field's own 1-8
        ({"max_cps": 0}, "max_cps"),
        ({"stream_format": "sip"}, "stream_format"),
    ],
)
def test_saving_a_campaign_with_a_bad_setting_from_code_is_refused(
    overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        make_campaign(**overrides)
    assert field in refused.value.message_dict
    assert not Campaign.objects.exists()


@pytest.mark.django_db
def test_a_campaign_cannot_fall_back_to_its_own_trunk() -> None:
    campaign = make_campaign()
    campaign.fallback_trunk = campaign.trunk
    with pytest.raises(ValidationError) as refused:
        campaign.save()
    assert "fallback_trunk" in refused.value.message_dict


@pytest.mark.django_db
def test_form_only_rules_do_not_stop_a_save_from_code() -> None:
    """An uncategorised promotional campaign (what `dial` makes by default) and one ending
    before it starts (the scheduling tests' case): the runtime refuses both safely."""
    now = dt.datetime.now(dt.UTC)
    campaign = make_campaign(purpose="promotional", starts_at=now, ends_at=now)
    with pytest.raises(ValidationError) as refused:
        campaign.full_clean()
    assert {"category", "ends_at"} <= set(refused.value.message_dict)


@pytest.mark.django_db
def test_a_row_stored_before_validation_can_still_save_its_other_fields() -> None:
    campaign = make_campaign()
    Campaign.objects.filter(id=campaign.pk).update(retry_delays={"busy": "ten minutes"})
    campaign.refresh_from_db()
    campaign.name = "Renamed"
    campaign.save(update_fields=["name"])  # a rename must not need the old mistake fixed first
    with pytest.raises(ValidationError, match="ten minutes"):
        campaign.save()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"sip_uri": "sip:user@127.0.0.1:5060"}, "sip_uri"),
        ({"sip_uri": "127.0.0.1:5060"}, "sip_uri"),
        ({"sip_uri": "sip:127.0.0.1:70000"}, "sip_uri"),
        ({"max_cps": 0}, "max_cps"),
        ({"max_cps": float("nan")}, "max_cps"),
        ({"max_channels": 0}, "max_channels"),
        ({"name": "not a slug"}, "name"),
    ],
)
def test_saving_a_bad_trunk_from_code_is_refused(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        make_trunk(**overrides)
    assert field in refused.value.message_dict
    assert not Trunk.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("given", "stored", "series"),
    [
        ("01401234567", "+911401234567", "140"),
        ("1401234567", "+911401234567", "140"),
        ("+911401234567", "+911401234567", "140"),
        ("+91 1600 123 456", "+911600123456", "1600"),
        ("9812345678", "+919812345678", "mobile"),
    ],
)
def test_a_caller_id_is_stored_in_e164_with_its_series(
    given: str, stored: str, series: str
) -> None:
    caller_id = make_caller_id(number=given)
    caller_id.refresh_from_db()
    assert (caller_id.number, caller_id.series) == (stored, series)


@pytest.mark.django_db
def test_the_series_follows_the_settings(settings: Any) -> None:
    settings.COMPLIANCE_PROMO_SERIES = ["1401"]
    assert make_caller_id(number="01401234567").series == "1401"


@pytest.mark.django_db
@pytest.mark.parametrize("number", ["12345", "not a number", "+9114012345678901", ""])
def test_an_invalid_caller_id_is_refused(number: str) -> None:
    with pytest.raises(ValidationError) as refused:
        make_caller_id(number=number)
    assert "number" in refused.value.message_dict
    assert not CallerId.objects.exists()


# -- retry scheduling with what was stored before ------------------------------------------------


@pytest.mark.parametrize(
    "stored",
    [
        {"busy": "ten minutes"},
        {"busy": True},
        {"busy": -1},
        {"busy": 10**12},  # once an OverflowError in timedelta
        {"busy": [600]},
        "ten minutes",
        ["busy"],
        42,
    ],
)
def test_a_bad_stored_delay_falls_back_to_the_default_with_a_warning(
    stored: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="campaigns.retry"):
        delay = retry_delay(disposition="busy", delays=stored, campaign_id=12)
    assert delay == dt.timedelta(seconds=600)
    (warning,) = caplog.records
    assert warning.levelname == "WARNING" and "campaign 12" in warning.getMessage()


def test_other_dispositions_keep_their_own_delay_beside_a_bad_one() -> None:
    stored = {"busy": "ten minutes", "no_answer": 120}
    assert retry_delay(disposition="no_answer", delays=stored) == dt.timedelta(seconds=120)
    assert retry_delay(disposition="failed", delays=stored) == dt.timedelta(seconds=300)
    assert retry_delay(disposition="answered", delays=stored) is None


# -- the admin ------------------------------------------------------------------------------------


def _errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, "the form was accepted"
    return dict(response.context["adminform"].form.errors)


@pytest.mark.django_db
def test_the_admin_form_posts_back_unchanged(admin_client: Client) -> None:
    campaign = make_campaign(retry_delays={"busy": 120}, agent_url="wss://agent.example.com/a")
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    response = admin_client.post(url, admin_form_data(admin_client, url))
    assert response.status_code == 302, _errors(response)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"retry_delays": '{"busy": "ten minutes"}'}, "retry_delays", "not a whole number"),
        ({"retry_delays": '{"busy": 600, "answered": 5}'}, "retry_delays", "never retried"),
        ({"agent_url": "http://agent.example.com/stream"}, "agent_url", "ws:// or wss://"),
        ({"purpose": "promotional", "category": ""}, "category", "category (1-8)"),
        ({"window_start": "09:00:00", "window_end": "09:00:00"}, "window_end", "never open"),
        (
            {"starts_at_0": "2026-12-10", "starts_at_1": "10:00:00",
             "ends_at_0": "2026-12-10", "ends_at_1": "09:00:00"},
            "ends_at",
            "after the start time",
        ),
    ],
)  # fmt: skip
def test_the_campaign_form_shows_the_field_error_and_changes_nothing(
    admin_client: Client, changes: dict[str, str], field: str, message: str
) -> None:
    campaign = make_campaign(retry_delays={"busy": 120})
    before = Campaign.objects.values().get(id=campaign.pk)
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])

    response = admin_client.post(url, admin_form_data(admin_client, url) | changes)

    errors = _errors(response)
    assert field in errors and message in " ".join(errors[field]), errors
    assert message in response.content.decode().replace("&quot;", '"').replace("&#x27;", "'")
    assert Campaign.objects.values().get(id=campaign.pk) == before


@pytest.mark.django_db
def test_the_campaign_form_refuses_its_trunk_as_fallback(admin_client: Client) -> None:
    campaign = make_campaign()
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    data = admin_form_data(admin_client, url) | {"fallback_trunk": str(campaign.trunk_id)}
    assert "fallback_trunk" in _errors(admin_client.post(url, data))
    assert Campaign.objects.get(id=campaign.pk).fallback_trunk_id is None


@pytest.mark.django_db
def test_adding_a_caller_id_in_the_admin_stores_e164_and_its_series(admin_client: Client) -> None:
    sender = make_sender()
    response = admin_client.post(
        reverse("admin:campaigns_callerid_add"),
        {"number": "01401234567", "sender": str(sender.pk), "trunk": "", "active": "on"},
    )
    assert response.status_code == 302, _errors(response)
    caller_id = CallerId.objects.get()
    assert (caller_id.number, caller_id.series) == ("+911401234567", "140")
    # The same number written another way is the same caller ID.
    again = admin_client.post(
        reverse("admin:campaigns_callerid_add"),
        {"number": "+91 140 123 4567", "sender": str(sender.pk), "trunk": "", "active": "on"},
    )
    assert "number" in _errors(again)
    assert CallerId.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("number", ["12345", "0140123", "abc"])
def test_an_invalid_caller_id_is_a_form_error(admin_client: Client, number: str) -> None:
    response = admin_client.post(
        reverse("admin:campaigns_callerid_add"),
        {"number": number, "sender": str(make_sender().pk), "trunk": "", "active": "on"},
    )
    errors = _errors(response)
    assert "is not a valid phone number" in " ".join(errors["number"])
    assert not CallerId.objects.exists()


@pytest.mark.django_db
def test_the_trunk_form_shows_a_bad_sip_uri(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("admin:campaigns_trunk_add"),
        {"name": "carrier", "sip_uri": "http://sbc.example.com", "transport": "udp",
         "max_cps": "5", "max_channels": "30", "enabled": "on"},
    )  # fmt: skip
    assert "sip:host[:port]" in " ".join(_errors(response)["sip_uri"])
    assert not Trunk.objects.exists()
