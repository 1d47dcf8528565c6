from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse

from campaigns.models import Contact
from campaigns.services.contacts_import import MAX_ISSUES
from tests.helpers.factories import make_campaign

pytestmark = pytest.mark.django_db


@override_settings(FILE_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_an_upload_kept_in_a_temporary_file_is_imported_from_it(admin_client: Client) -> None:
    # Past FILE_UPLOAD_MAX_MEMORY_SIZE Django keeps the upload in a temporary file, which the
    # import streams; the small limit makes this 150 KB file one of those.
    campaign = make_campaign()
    data = b"number,name\n" + b"".join(b"98%08d,Name %d\n" % (i, i) for i in range(6000))

    response = admin_client.post(
        reverse("admin:campaigns_campaign_upload_contacts", args=[campaign.pk]),
        {"file": SimpleUploadedFile("leads.csv", data), "list_name": "big"},
    )

    assert response.status_code == 200
    assert "Imported 6000 contacts" in response.content.decode()
    assert Contact.objects.filter(campaign=campaign).count() == 6000


def test_the_upload_page_shows_how_many_errors_it_does_not_list(admin_client: Client) -> None:
    campaign = make_campaign()
    data = b"number\n" + b"bad\n" * (MAX_ISSUES + 7)

    response = admin_client.post(
        reverse("admin:campaigns_campaign_upload_contacts", args=[campaign.pk]),
        {"file": SimpleUploadedFile("leads.csv", data), "list_name": "bad"},
    )

    page = response.content.decode()
    assert f"Errors ({MAX_ISSUES + 7}, the first {MAX_ISSUES} shown)" in page
    assert page.count("not a valid phone number") == MAX_ISSUES
    assert not Contact.objects.exists()
