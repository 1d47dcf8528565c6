"""An operator's action on a campaign does not wait for a contact import into it.

A contact import checks its foreign keys per statement (campaigns.services.contacts_stage), so
for as long as its transaction runs (a million rows: about a minute) it holds KEY SHARE on the
campaign's row. Start and pause must not queue behind that, or they run into the statement
timeout while the import goes on.
"""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from campaigns.models import Campaign, CampaignStatus
from campaigns.services.lifecycle import campaign_pause, campaign_start
from tests.helpers.factories import make_campaign, make_contact_list

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks are PostgreSQL's"
)


def _importing(campaign: Campaign) -> psycopg.Connection:
    """A second session that has written a contact of the campaign, as an import does, and has
    not committed."""
    contact_list = make_contact_list(campaign=campaign)
    db = connection.settings_dict
    other = psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=int(db["PORT"] or 5432),
        user=db["USER"] or "postgres",
        dbname=db["NAME"],
    )
    other.execute("SET CONSTRAINTS ALL IMMEDIATE")
    other.execute(
        "INSERT INTO campaigns_contact (campaign_id, contact_list_id, number, name, fields, "
        "status, attempts, last_disposition, time_zone) "
        "VALUES (%s, %s, '+919876543210', '', '{}', 'pending', 0, '', 'Asia/Kolkata')",
        [campaign.pk, contact_list.pk],
    )
    return other


@pytest.mark.django_db(transaction=True)
def test_start_and_pause_do_not_wait_for_an_import_in_progress() -> None:
    campaign = make_campaign()
    other = _importing(campaign)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '1s'")  # a wait would fail the test, not hang it
        campaign_start(campaign_id=campaign.pk)
        campaign_pause(campaign_id=campaign.pk)
    finally:
        other.rollback()
        other.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.PAUSED
