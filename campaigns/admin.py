"""Admin for trunks, caller IDs, campaigns, contacts and attempts. Rules live in services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import (
    Count,
    ForeignKey,
    ManyToManyField,
    QuerySet,
)
from django.forms import ModelChoiceField, ModelMultipleChoiceField
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import dateformat
from django.utils.formats import get_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from campaigns.admin_history import KeepsHistoryAdmin, has_model_perm
from campaigns.dialing_status import campaign_idle_reasons
from campaigns.models import (
    CallAttempt,
    CallerId,
    Campaign,
    CampaignStatus,
    Contact,
    ContactList,
    Trunk,
)
from campaigns.models.attempt import DISPOSITION_CHOICES
from campaigns.promises import PROMISED_FIELDS
from campaigns.selectors import (
    callerid_has_history,
    campaign_contact_counts,
    campaign_disposition_counts,
    campaign_has_history,
    campaigns_with_counts,
    trunk_has_history,
)
from campaigns.services.archive import callerid_archive, campaign_archive
from campaigns.services.caller_ids import caller_id_save
from campaigns.services.contacts_import import contacts_import
from campaigns.services.lifecycle import (
    CampaignStateError,
    campaign_pause,
    campaign_resume,
    campaign_schedule,
    campaign_start,
    campaign_stop,
)
from campaigns.services.preflight import (
    Preflight,
    campaign_preflight,
    campaign_preflight_rows,
)
from compliance.admin import actor_of
from compliance.models import Sender
from compliance.policy import policy_from_settings, zone_or_default
from compliance.reasons import reason_label
from dialer.admin_filters import ArchivedListFilter
from dialer.csv_out import csv_lines


@admin.register(Trunk)
class TrunkAdmin(KeepsHistoryAdmin):
    list_display = ("name", "sip_uri", "transport", "max_cps", "max_channels", "enabled")
    list_filter = ("enabled", "transport")
    search_fields = ("name", "sip_uri")
    history_note = "It has carried calls, so it cannot be deleted: disable it instead."

    def has_history(self, obj: Trunk) -> bool:
        return trunk_has_history(trunk=obj)


@admin.register(CallerId)
class CallerIdAdmin(KeepsHistoryAdmin):
    list_display = ("number", "series", "sender", "trunk", "active", "archived_at")
    list_filter = (ArchivedListFilter, "active", "sender", "trunk")
    list_select_related = ("sender", "trunk")
    search_fields = ("number",)
    readonly_fields = ("series", "archived_at")
    actions = ("archive_caller_ids",)

    def has_history(self, obj: CallerId) -> bool:
        return callerid_has_history(caller_id=obj)

    def save_model(self, request: HttpRequest, obj: CallerId, form: Any, change: bool) -> None:
        caller_id_save(caller_id=obj, actor=actor_of(request))

    def has_archive_permission(self, request: HttpRequest) -> bool:
        return has_model_perm(request, self, "archive")

    def has_change_permission(self, request: HttpRequest, obj: CallerId | None = None) -> bool:
        if obj is not None and obj.archived_at is not None:
            return False  # archived for good: viewable, never presented again
        return super().has_change_permission(request, obj)

    @admin.action(
        description="Archive selected caller IDs (never presented again)", permissions=["archive"]
    )
    def archive_caller_ids(self, request: HttpRequest, queryset: QuerySet[CallerId]) -> None:
        actor = actor_of(request)
        done = sum(
            callerid_archive(caller_id_id=pk, actor=actor)
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"Archived {done} caller ID(s).", level=messages.SUCCESS)


_DISPOSITION_LABELS = dict(DISPOSITION_CHOICES)


def _disposition_label(code: str) -> str:
    """A disposition in the words of CallAttempt.disposition's choices (a contact's "erased" in
    the same style)."""
    return _DISPOSITION_LABELS.get(code) or code.replace("_", " ").title()


def _callee_time(when: dt.datetime | None, zone_name: str) -> str:
    """The time on the callee's clock (their contact's zone), zone named: the calling window is
    theirs, the operator's clock is the admin's own."""
    if when is None:
        return "-"
    zone = zone_or_default(zone_name, policy_from_settings().default_tz)
    local = dateformat.format(when.astimezone(zone), get_format("DATETIME_FORMAT"))
    return f"{local} ({zone.key}, callee)"


def _table(counts: dict[str, int], empty: str) -> SafeString:
    if not counts:
        return format_html("<p>{}</p>", empty)
    largest_first = sorted(counts.items(), key=lambda item: item[1], reverse=True)
    rows = format_html_join("", "<tr><td>{}</td><td>{}</td></tr>", largest_first)
    return format_html("<table><tbody>{}</tbody></table>", rows)


def _preflight_label(code: str, summary: dict[str, Any]) -> str:
    if code == "outside_calling_hours" and summary.get("opens_at"):
        return f"{reason_label(code)} until {summary['opens_at']}"
    return reason_label(code)


def _preflight_html(summary: dict[str, Any], report_url: str) -> SafeString:
    """A stored pre-flight (Campaign.preflight) in words, with its report's link."""
    total, blocked = summary.get("total", 0), summary.get("blocked", 0)
    every_call = summary.get("campaign_reasons") or []
    if every_call:
        labels = ", ".join(_preflight_label(code, summary) for code in every_call)
        headline = format_html("<strong>All {} would be blocked now: {}.</strong>", total, labels)
    else:
        headline = format_html("{} of {} contacts would be blocked.", blocked, total)
    cli_issues = summary.get("cli_issues") or {}
    by_reason = {
        _preflight_label(code, summary): n for code, n in summary.get("by_reason", {}).items()
    }
    return format_html(
        "<p>{} (Registry v{}, {}.){}</p>{}"
        '<p><a class="button" href="{}">Download the blocked contacts (CSV)</a></p>',
        headline,
        summary.get("registry_version") or "-",
        summary.get("at", ""),
        format_html(" <strong>Caller IDs refused: {}.</strong>", "; ".join(
            f"{cli} ({', '.join(reason_label(r) for r in why)})" for cli, why in cli_issues.items()
        )) if cli_issues else "",
        _table(by_reason, "Nobody would be blocked."),
        report_url,
    )  # fmt: skip


def _lifecycle_action(
    step: Callable[..., object], verb: str, past: str, permission: str
) -> Callable[[admin.ModelAdmin, HttpRequest, QuerySet[Campaign]], None]:
    def action(
        modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Campaign]
    ) -> None:
        done = 0
        for campaign in queryset:
            try:
                step(campaign_id=campaign.pk)
            except CampaignStateError as exc:
                modeladmin.message_user(request, f"{campaign}: {exc}", level=messages.ERROR)
            else:
                done += 1
        if done:
            modeladmin.message_user(
                request, f"{past.capitalize()} {done} campaign(s).", level=messages.SUCCESS
            )

    action.__name__ = f"{step.__name__.removeprefix('campaign_')}_campaigns"
    return admin.action(
        description=f"{verb.capitalize()} selected campaigns", permissions=[permission]
    )(action)


class UploadContactsForm(forms.Form):
    file = forms.FileField(help_text="CSV, UTF-8, with a header: number (or phone/msisdn), name, …")
    list_name = forms.CharField(max_length=200)
    skip_invalid = forms.BooleanField(
        required=False,
        help_text="Import the valid rows and skip invalid ones, instead of rejecting the file.",
    )


@admin.register(Campaign)
class CampaignAdmin(KeepsHistoryAdmin):
    list_display = (
        "name",
        "status",
        "purpose",
        "sender",
        "trunk",
        "contacts_total",
        "contacts_pending",
        "attempts_total",
        "created_at",
    )
    list_filter = (ArchivedListFilter, "status", "purpose", "sender")
    list_select_related = ("sender", "trunk")
    search_fields = ("name",)
    filter_horizontal = ("caller_ids",)
    # Status moves only through the lifecycle actions, which know the allowed transitions.
    readonly_fields = (
        "status",
        "created_at",
        "started_at",
        "finished_at",
        "archived_at",
        "upload_contacts",
        "contacts_panel",
        "dispositions_panel",
        "preflight_panel",
    )
    # Each action needs its own permission (Campaign.Meta): campaigns.scrub_campaign,
    # start_campaign (schedule, start, resume: the ones that lead to dialing), pause_campaign
    # (pause, stop: the ones that end it), archive_campaign.
    actions = (
        _lifecycle_action(campaign_preflight, "pre-flight scrub", "scrubbed", "scrub"),
        _lifecycle_action(campaign_schedule, "schedule", "scheduled", "start"),
        _lifecycle_action(campaign_start, "start", "started", "start"),
        _lifecycle_action(campaign_pause, "pause", "paused", "pause"),
        _lifecycle_action(campaign_resume, "resume", "resumed", "start"),
        _lifecycle_action(campaign_stop, "stop", "stopped", "pause"),
        _lifecycle_action(campaign_archive, "archive", "archived", "archive"),
    )

    def has_scrub_permission(self, request: HttpRequest) -> bool:
        return has_model_perm(request, self, "scrub")

    def has_start_permission(self, request: HttpRequest) -> bool:
        return has_model_perm(request, self, "start")

    def has_pause_permission(self, request: HttpRequest) -> bool:
        return has_model_perm(request, self, "pause")

    def has_archive_permission(self, request: HttpRequest) -> bool:
        return has_model_perm(request, self, "archive")

    def has_history(self, obj: Campaign) -> bool:
        return campaign_has_history(campaign=obj)

    def has_change_permission(self, request: HttpRequest, obj: Campaign | None = None) -> bool:
        if obj is not None and obj.archived_at is not None:
            return False  # archived for good: viewable, never changed or started again
        return super().has_change_permission(request, obj)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # Said on every look at the page (not on a POST that will redirect): why no call goes out.
        campaign = self.get_object(request, object_id)
        if request.method == "GET" and campaign is not None:
            for reason in campaign_idle_reasons(campaign=campaign):
                self.message_user(request, f"Not dialing: {reason}", level=messages.WARNING)
        return super().change_view(request, object_id, form_url, extra_context)

    def get_readonly_fields(
        self, request: HttpRequest, obj: Campaign | None = None
    ) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is None or obj.status == CampaignStatus.DRAFT:
            return fields
        # Its promises (campaigns.promises): a forged POST of these fields is ignored.
        return (*PROMISED_FIELDS, "caller_ids", *fields)

    def formfield_for_manytomany(
        self, db_field: ManyToManyField[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelMultipleChoiceField | None:
        if db_field.name == "caller_ids":
            kwargs["queryset"] = CallerId.objects.filter(archived_at=None)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        if db_field.name == "sender":
            kwargs["queryset"] = Sender.objects.filter(archived_at=None)  # archived: history only
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        return campaigns_with_counts(campaigns=super().get_queryset(request))

    @admin.display(description="contacts", ordering="n_contacts")
    def contacts_total(self, obj: Campaign) -> int:
        return getattr(obj, "n_contacts", None) or 0

    @admin.display(description="pending", ordering="n_pending")
    def contacts_pending(self, obj: Campaign) -> int:
        return getattr(obj, "n_pending", None) or 0

    @admin.display(description="attempts", ordering="n_attempts")
    def attempts_total(self, obj: Campaign) -> int:
        return getattr(obj, "n_attempts", None) or 0

    @admin.display(description="Dispositions")
    def dispositions_panel(self, obj: Campaign) -> SafeString:
        counts = campaign_disposition_counts(campaign_id=obj.pk)
        labelled = {_disposition_label(code): n for code, n in counts.items()}
        return _table(labelled, "No call attempts yet.")

    @admin.display(description="Contacts")
    def contacts_panel(self, obj: Campaign) -> SafeString:
        return _table(campaign_contact_counts(campaign_id=obj.pk), "No contacts yet.")

    @admin.display(description="Pre-flight scrub")
    def preflight_panel(self, obj: Campaign) -> SafeString | str:
        if not obj.preflight:
            return "Not scrubbed yet: it runs at upload, at start, and with the scrub action."
        url = reverse("admin:campaigns_campaign_preflight_report", args=[obj.pk])
        return _preflight_html(obj.preflight, url)

    def preflight_report_view(
        self, request: HttpRequest, campaign_id: int
    ) -> StreamingHttpResponse:
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        rows = campaign_preflight_rows(campaign_id=campaign.pk)
        response = StreamingHttpResponse(csv_lines(("number", "name", "reasons"), rows),
                                         content_type="text/csv")  # fmt: skip
        response["Content-Disposition"] = (
            f'attachment; filename="campaign-{campaign.pk}-preflight.csv"'
        )
        return response

    @admin.display(description="Upload contacts")
    def upload_contacts(self, obj: Campaign) -> SafeString | str:
        if obj.pk is None:
            return "Save the campaign first."
        url = reverse("admin:campaigns_campaign_upload_contacts", args=[obj.pk])
        return format_html('<a class="button" href="{}">Upload contacts (CSV)</a>', url)

    def get_urls(self) -> list[URLPattern]:  # type: ignore[override]
        upload = path(
            "<int:campaign_id>/upload-contacts/",
            self.admin_site.admin_view(self.upload_contacts_view),
            name="campaigns_campaign_upload_contacts",
        )
        report = path(
            "<int:campaign_id>/preflight.csv",
            self.admin_site.admin_view(self.preflight_report_view),
            name="campaigns_campaign_preflight_report",
        )
        return [upload, report, *super().get_urls()]

    def upload_contacts_view(self, request: HttpRequest, campaign_id: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        report = None
        preflight: Preflight | None = None
        if request.method == "POST":
            form = UploadContactsForm(request.POST, request.FILES)
            if form.is_valid():
                report = contacts_import(
                    campaign_id=campaign.pk,
                    list_name=form.cleaned_data["list_name"],
                    # The upload's own file (a temporary file past 2.5 MB), streamed: never
                    # read into memory whole.
                    data=form.cleaned_data["file"].file,
                    skip_invalid=form.cleaned_data["skip_invalid"],
                )
                if report.applied:
                    preflight = campaign_preflight(campaign_id=campaign.pk)
        else:
            form = UploadContactsForm()
        context = {
            **self.admin_site.each_context(request),
            "title": f"Upload contacts to {campaign}",
            "opts": self.opts,
            "original": campaign,
            "form": form,
            "report": report,
            "preflight": preflight
            and _preflight_html(
                asdict(preflight),
                reverse("admin:campaigns_campaign_preflight_report", args=[campaign.pk]),
            ),
        }
        return TemplateResponse(request, "admin/campaigns/campaign/upload_contacts.html", context)


@admin.register(ContactList)
class ContactListAdmin(admin.ModelAdmin):
    list_display = ("name", "campaign", "contact_count", "created_at")
    list_filter = ("campaign",)
    list_select_related = ("campaign",)
    search_fields = ("name",)
    readonly_fields = ("campaign", "created_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ContactList]:
        return super().get_queryset(request).annotate(n_contacts=Count("contacts"))

    @admin.display(description="contacts", ordering="n_contacts")
    def contact_count(self, obj: ContactList) -> int:
        return getattr(obj, "n_contacts", None) or 0

    # Lists come from contacts_import; deleting one would cascade into call history.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ContactList | None = None) -> bool:
        return False


# A list's foreign key and date columns never wrap (Django's "nowrap"); these, shown through
# callables, do: at 1280 px a long campaign name or a time takes two lines, not the screen.
@admin.display(description="campaign", ordering="campaign__name")
def _campaign(obj: CallAttempt | Contact) -> str:
    return obj.campaign.name


class _AttemptColumns:
    """An attempt's columns in words, for its list and for its contact's page."""

    @admin.display(description="reasons")
    def reasons_text(self, obj: CallAttempt) -> str:
        return ", ".join(reason_label(code) for code in obj.reasons)

    # Short headings: a list's headings do not wrap, and ten columns share 1280 px.
    @admin.display(description="SIP", ordering="sip_code")
    def sip(self, obj: CallAttempt) -> int | None:
        return obj.sip_code

    @admin.display(description="PDD ms", ordering="pdd_ms")
    def pdd(self, obj: CallAttempt) -> int | None:
        return obj.pdd_ms

    @admin.display(description="secs", ordering="duration_s")
    def secs(self, obj: CallAttempt) -> float | None:
        return obj.duration_s

    @admin.display(description="MOS", ordering="mos")
    def mos_score(self, obj: CallAttempt) -> float | None:
        return obj.mos

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: CallAttempt) -> dt.datetime:
        return obj.created_at


class CallAttemptInline(_AttemptColumns, admin.TabularInline):
    """A contact's attempts on its page, newest first: a record, never edited here."""

    model = CallAttempt
    fields = (
        "attempt_number", "created", "status", "disposition", "reasons_text", "sip", "secs",
        "mos_score",
    )  # fmt: skip
    readonly_fields = fields
    ordering = ("-id",)
    extra = 0
    show_change_link = True
    verbose_name_plural = "call attempts (newest first)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = (
        "number",
        "name",
        _campaign,
        "status",
        "attempts",
        "next_attempt",
        "next_attempt_callee",
        "last_disposition_label",
    )
    list_filter = ("status", "campaign")
    list_select_related = ("campaign",)
    search_fields = ("number", "name")
    # Dialing state belongs to the dispatcher; only the descriptive fields are editable here.
    readonly_fields = (
        "campaign",
        "contact_list",
        "number",
        "status",
        "attempts",
        "next_attempt_at",
        "next_attempt_callee",
        "time_zone",
        "last_disposition_label",
    )
    exclude = ("last_disposition",)  # shown in words (last_disposition_label), never edited
    inlines = (CallAttemptInline,)
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Contact | None = None) -> bool:
        return False

    @admin.display(description="next attempt", ordering="next_attempt_at")
    def next_attempt(self, obj: Contact) -> dt.datetime | None:
        return obj.next_attempt_at

    @admin.display(description="callee's clock", ordering="next_attempt_at")
    def next_attempt_callee(self, obj: Contact) -> str:
        return _callee_time(obj.next_attempt_at, obj.time_zone)

    @admin.display(description="disposition", ordering="last_disposition")
    def last_disposition_label(self, obj: Contact) -> str:
        return _disposition_label(obj.last_disposition) if obj.last_disposition else "-"


@admin.register(CallAttempt)
class CallAttemptAdmin(_AttemptColumns, admin.ModelAdmin):
    """What happened on each call: a record, never edited by hand."""

    # Ten narrow columns beside the filters fit a 1280 px screen (the models sidebar gives way:
    # templates/admin/campaigns/callattempt/change_list.html).
    list_display = (
        "number",
        _campaign,
        "status",
        "disposition",
        "reasons_text",
        "sip",
        "pdd",
        "secs",
        "mos_score",
        "created",
    )
    list_filter = ("status", "disposition", "campaign", "created_at")
    list_select_related = ("campaign",)
    search_fields = ("number",)
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: CallAttempt | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: CallAttempt | None = None) -> bool:
        return False
