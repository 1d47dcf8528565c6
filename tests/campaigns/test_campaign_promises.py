"""A campaign keeps its promises once out of draft; call history is archived, never deleted."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns.models import CallAttempt, CallerId, Campaign, CampaignStatus, Contact
from campaigns.services.claim_check import attempt_process
from campaigns.services.dispatch import dispatch_due
from campaigns.services.lifecycle import CampaignStateError, campaign_start
from tests.helpers.factories import (
    make_call_attempt,
    make_caller_id,
    make_campaign,
    make_contact,
    make_engine_process,
    make_sender,
    make_trunk,
)

pytestmark = pytest.mark.django_db


def _messages(response: Any) -> list[str]:
    return [m.message for m in response.context["messages"]]


def _change_form_data(response: Any) -> dict[str, Any]:
    """The POST a browser would send back for the change form as rendered."""
    form = response.context["adminform"].form
    data: dict[str, Any] = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        if isinstance(value, list | tuple):
            data[name] = [str(v) for v in value]
        elif value is True:
            data[name] = "on"
        else:
            data[name] = str(value)
    return data


def _running_promo() -> Campaign:
    campaign = make_campaign(purpose="promotional", category=3, status=CampaignStatus.RUNNING)
    make_call_attempt(contact=make_contact(campaign=campaign))
    return campaign


def _act(client: Client, model: str, action: str, *pks: int, **query: str) -> Any:
    url = reverse(f"admin:campaigns_{model}_changelist")
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return client.post(
        url, {"action": action, "_selected_action": [str(pk) for pk in pks]}, follow=True
    )


# -- promises ------------------------------------------------------------------------------------
def test_a_running_campaigns_purpose_cannot_be_changed_in_the_change_form(
    admin_client: Client,
) -> None:
    campaign = _running_promo()
    other_sender = make_sender()
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    page = admin_client.get(url)
    data = _change_form_data(page)
    assert "purpose" not in data  # shown read-only

    # A forged POST: the fields are not in the form, so they are ignored.
    forged_cli = make_caller_id(sender=other_sender)
    data |= {"purpose": "transactional", "category": "", "sender": str(other_sender.pk),
             "caller_ids": [str(forged_cli.pk)], "max_cps": "2"}  # fmt: skip
    response = admin_client.post(url, data)

    assert response.status_code == 302
    stored = Campaign.objects.get(pk=campaign.pk)
    assert (stored.purpose, stored.category, stored.sender_id) == (
        "promotional",
        3,
        campaign.sender_id,
    )
    assert list(stored.caller_ids.all()) == list(campaign.caller_ids.all())
    assert stored.max_cps == 2  # the rest of the form still saves


def test_a_draft_campaigns_purpose_can_still_be_changed(admin_client: Client) -> None:
    campaign = make_campaign(purpose="promotional", category=3)
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    data = _change_form_data(admin_client.get(url)) | {"purpose": "transactional", "category": ""}

    assert admin_client.post(url, data).status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).purpose == "transactional"


@pytest.mark.parametrize(
    ("field", "value"),
    [("purpose", "transactional"), ("category", 5), ("category", None)],
)
def test_changing_a_started_campaigns_promise_in_code_raises(field: str, value: object) -> None:
    campaign = _running_promo()
    setattr(campaign, field, value)

    with pytest.raises(ValidationError, match="make a new campaign"):
        campaign.save()

    assert Campaign.objects.get(pk=campaign.pk).purpose == "promotional"


def test_changing_a_started_campaigns_sender_in_code_raises() -> None:
    campaign = make_campaign(status=CampaignStatus.SCHEDULED)
    campaign.sender = make_sender()

    with pytest.raises(ValidationError, match="sender"):
        campaign.save()


def test_a_started_campaigns_caller_ids_cannot_change_from_either_side() -> None:
    campaign = _running_promo()
    extra = make_caller_id(sender=campaign.sender)
    (original,) = campaign.caller_ids.all()

    for change in (
        lambda: campaign.caller_ids.add(extra),
        lambda: campaign.caller_ids.remove(original),
        lambda: campaign.caller_ids.clear(),
        lambda: campaign.caller_ids.set([extra]),
        lambda: extra.campaigns.add(campaign),
        lambda: original.campaigns.clear(),
    ):
        with pytest.raises(ValidationError, match="caller IDs"), transaction.atomic():
            change()

    assert list(Campaign.objects.get(pk=campaign.pk).caller_ids.all()) == [original]


def test_a_started_campaigns_other_settings_still_change() -> None:
    campaign = _running_promo()
    campaign.max_cps = 3
    campaign.name = "renamed"
    campaign.save()
    campaign.caller_ids.set(list(campaign.caller_ids.all()))  # the same set is no change

    assert Campaign.objects.get(pk=campaign.pk).max_cps == 3


# -- call history is archived, never deleted -----------------------------------------------------
def test_a_campaign_with_attempts_offers_no_delete_and_a_forged_delete_is_refused(
    admin_client: Client,
) -> None:
    campaign = _running_promo()
    change_url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])

    page = admin_client.get(change_url)
    assert page.context["has_delete_permission"] is False
    assert any("archive it instead" in m for m in _messages(page))
    delete_url = reverse("admin:campaigns_campaign_delete", args=[campaign.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    # The bulk action asks for confirmation and lists what protects the campaign.
    response = admin_client.post(
        reverse("admin:campaigns_campaign_changelist"),
        {"action": "delete_selected", "_selected_action": [str(campaign.pk)], "post": "yes"},
    )
    assert response.status_code == 200

    assert Campaign.objects.filter(pk=campaign.pk).exists()
    assert CallAttempt.objects.filter(campaign=campaign).count() == 1
    assert Contact.objects.filter(campaign=campaign).count() == 1


def test_a_campaign_without_attempts_can_still_be_deleted(admin_client: Client) -> None:
    campaign = make_campaign()

    response = admin_client.post(
        reverse("admin:campaigns_campaign_delete", args=[campaign.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not Campaign.objects.filter(pk=campaign.pk).exists()


def test_deleting_call_history_in_code_is_refused() -> None:
    campaign = _running_promo()
    contact = Contact.objects.get(campaign=campaign)

    for delete in (campaign.delete, contact.delete, contact.contact_list.delete):
        with pytest.raises(ProtectedError):
            delete()

    assert CallAttempt.objects.filter(campaign=campaign).count() == 1


def test_a_caller_id_with_history_offers_no_delete(admin_client: Client) -> None:
    campaign = _running_promo()
    used = campaign.caller_ids.get()
    CallAttempt.objects.filter(campaign=campaign).update(cli=used.number)
    unused = make_caller_id()

    for cli, deletable in ((used, False), (unused, True)):
        url = reverse("admin:campaigns_callerid_change", args=[cli.pk])
        assert admin_client.get(url).context["has_delete_permission"] is deletable
    response = admin_client.post(
        reverse("admin:campaigns_callerid_delete", args=[used.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    # The bulk action needs delete permission on each object: it refuses, deleting nothing.
    response = admin_client.post(
        reverse("admin:campaigns_callerid_changelist"),
        {"action": "delete_selected", "_selected_action": [str(used.pk)], "post": "yes"},
    )
    assert response.status_code == 403
    with pytest.raises(ProtectedError), transaction.atomic():
        used.delete()
    assert CallerId.objects.filter(pk=used.pk).exists()


def test_archive_a_stopped_campaign_hides_it_and_it_cannot_start(admin_client: Client) -> None:
    stopped = make_campaign(name="Old one", status=CampaignStatus.STOPPED)
    running = make_campaign(name="Live one", status=CampaignStatus.RUNNING)

    response = _act(admin_client, "campaign", "archive_campaigns", stopped.pk, running.pk)

    assert any("stop it before archiving" in m for m in _messages(response))
    assert Campaign.objects.get(pk=running.pk).archived_at is None
    assert Campaign.objects.get(pk=stopped.pk).archived_at is not None
    changelist = reverse("admin:campaigns_campaign_changelist")
    shown = admin_client.get(changelist).context["cl"].result_list
    assert [c.pk for c in shown] == [running.pk]
    archived = admin_client.get(changelist, {"archived": "yes"}).context["cl"].result_list
    assert [c.pk for c in archived] == [stopped.pk]
    # Frozen: viewable, not editable.
    change = admin_client.get(reverse("admin:campaigns_campaign_change", args=[stopped.pk]))
    assert change.status_code == 200 and change.context["has_change_permission"] is False


def test_an_archived_campaign_cannot_be_started() -> None:
    draft = make_campaign()
    Campaign.objects.filter(pk=draft.pk).update(archived_at=timezone.now())

    with pytest.raises(CampaignStateError, match="archived"):
        campaign_start(campaign_id=draft.pk)

    assert Campaign.objects.get(pk=draft.pk).status == CampaignStatus.DRAFT


def test_an_archived_caller_id_is_never_used_for_dialing(admin_client: Client) -> None:
    sender = make_sender(sector="bfsi")
    trunk = make_trunk(sip_uri="sip:127.0.0.1:5999")
    kept = make_caller_id(number="+911600100001", sender=sender, trunk=trunk)
    retired = make_caller_id(number="+911600100002", sender=sender, trunk=trunk)
    campaign = make_campaign(sender=sender, trunk=trunk, caller_ids=[kept, retired],
                             purpose="transactional", max_cps=100, max_concurrent=10)  # fmt: skip
    for _ in range(4):
        make_contact(campaign=campaign)
    campaign_start(campaign_id=campaign.pk)

    _act(admin_client, "callerid", "archive_caller_ids", retired.pk)

    retired.refresh_from_db()
    assert retired.archived_at is not None and retired.active is False
    # Even switched back on by hand, an archived caller ID stays out of the pool.
    CallerId.objects.filter(pk=retired.pk).update(active=True)
    make_engine_process()
    attempts = dispatch_due()
    assert len(attempts) == 4
    assert {attempt_process(attempt_id=a) for a in attempts} == {"approved"}
    assert set(CallAttempt.objects.values_list("cli", flat=True)) == {kept.number}
    assert list(Campaign.objects.get(pk=campaign.pk).caller_ids.order_by("number")) == [
        kept,
        retired,
    ]  # the campaign's promise is unchanged; the archived number is just never presented


def test_a_view_only_user_gets_no_archive(client: Client) -> None:
    from tests.helpers.factories import make_user

    stopped = make_campaign(status=CampaignStatus.STOPPED)
    user: User = make_user(perms=("campaigns.view_campaign",))
    client.force_login(user)

    _act(client, "campaign", "archive_campaigns", stopped.pk)

    assert Campaign.objects.get(pk=stopped.pk).archived_at is None
