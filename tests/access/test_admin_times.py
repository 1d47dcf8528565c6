"""Times in the admin are the operator's: in OPERATOR_TZ (default India), to the second, zone named.

Issue 13: the admin showed UTC to the minute with no zone ("Dec. 4, 2026, 3:05 a.m.") while every
calling window is in IST."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign
from tests.helpers.admin import admin_form_data
from tests.helpers.factories import make_campaign

STORED = dt.datetime(2026, 12, 4, 3, 5, 20, tzinfo=dt.UTC)  # 08:35:20 in India


@pytest.mark.django_db
def test_the_campaign_list_shows_times_in_india_to_the_second(admin_client: Client) -> None:
    campaign = make_campaign()
    Campaign.objects.filter(id=campaign.pk).update(created_at=STORED)

    page = admin_client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()

    assert "2026-12-04 08:35:20 IST" in page
    assert "3:05 a.m." not in page


@pytest.mark.django_db
def test_a_time_typed_in_a_form_is_the_operators_own(admin_client: Client) -> None:
    campaign = make_campaign()
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    typed = {"starts_at_0": "2026-12-10", "starts_at_1": "10:00:00"}

    response = admin_client.post(url, admin_form_data(admin_client, url) | typed)

    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.starts_at == dt.datetime(2026, 12, 10, 4, 30, tzinfo=dt.UTC)
