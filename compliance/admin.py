"""Admin for senders, the DND registry, consents, suppressions, erasures and the audit log.

Every write to compliance data goes through an audited service naming the signed-in user; the
admin only collects and checks input. Numbers are normalised (E.164, national or trunk-0) in
every form, with a form error for an invalid one.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import date_format

from compliance.consents import ConsentData, consent_revoke, consents_apply
from compliance.erasure import number_erase
from compliance.exports import FORMATS, audit_stream
from compliance.keys import number_token
from compliance.models import (
    AuditEntry,
    Consent,
    Erasure,
    RegistryVersion,
    Sender,
    Suppression,
)
from compliance.numbers import InvalidNumber, to_e164
from compliance.reasons import reason_label
from compliance.senders import SenderError, sender_archive, sender_save
from compliance.suppressions import SuppressionError, suppression_add, suppression_lift
from dialer.admin_filters import ArchivedListFilter


def actor_of(request: HttpRequest) -> str:
    return f"user:{request.user.get_username()}"


class NumberField(forms.CharField):
    """A phone number in any usual form, cleaned to E.164."""

    def clean(self, value: Any) -> str:
        raw = super().clean(value)
        try:
            return to_e164(raw, region="IN")
        except InvalidNumber as exc:
            raise forms.ValidationError(
                f"{raw!r} is not a valid phone number (E.164, national or with a trunk 0)"
            ) from exc


class _TokenSearchMixin:
    """Searching for a number finds it by token too: it matches rows whose number was erased."""

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        results, duplicates = super().get_search_results(  # type: ignore[misc]
            request, queryset, search_term
        )
        try:
            token = number_token(to_e164(search_term, region="IN"))
        except InvalidNumber:
            return results, duplicates
        return results | queryset.filter(number_token=token), duplicates


class AddOnlyAdmin(admin.ModelAdmin):
    """Added through an audited service (save_model), never edited or deleted by hand: a consent
    changes by revocation or import, a suppression is lifted, an erasure is final."""

    def has_change_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


class ReadOnlyAdmin(AddOnlyAdmin):
    """Viewable only: these rows are written by loaders and the dialer, never by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Sender)
class SenderAdmin(admin.ModelAdmin):
    list_display = ("name", "dlt_entity_id", "sector", "archived_at")
    list_filter = (ArchivedListFilter, "sector")
    search_fields = ("name", "dlt_entity_id")
    actions = ["archive_senders"]

    def get_readonly_fields(self, request: HttpRequest, obj: Sender | None = None) -> Any:
        # The caps and the audit log count by the DLT id: a sender keeps the one it was made with.
        return ("dlt_entity_id", "archived_at") if obj else ("archived_at",)

    def save_model(self, request: HttpRequest, obj: Sender, form: Any, change: bool) -> None:
        sender_save(sender=obj, actor=actor_of(request))

    def has_delete_permission(self, request: HttpRequest, obj: Sender | None = None) -> bool:
        # A sender's history (campaigns, consents, suppressions, the audit log) names it:
        # senders are archived, never deleted.
        return False

    @admin.action(description="Archive the selected senders", permissions=["change"])
    def archive_senders(self, request: HttpRequest, queryset: QuerySet[Sender]) -> None:
        done = 0
        for sender in queryset:
            try:
                done += sender_archive(sender_id=sender.pk, actor=actor_of(request))
            except SenderError as exc:
                self.message_user(request, f"{sender}: {exc}", level=messages.ERROR)
        self.message_user(request, f"{done} sender(s) archived (kept with their history)")


@admin.register(RegistryVersion)
class RegistryVersionAdmin(ReadOnlyAdmin):
    # Loaded only by `manage.py load_registry`: a hand edit would diverge from the official data.
    list_display = (
        "id", "kind", "as_of", "completed_at", "entries", "added", "changed", "removed",
        "rejected", "source",
    )  # fmt: skip
    date_hierarchy = "as_of"


class ConsentAddForm(forms.ModelForm):
    number = NumberField(max_length=32)

    class Meta:
        model = Consent
        fields = ("number", "sender", "scope", "given_at", "expires_at", "reference")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        given, expires = data.get("given_at"), data.get("expires_at")
        if given and expires and expires <= given:
            self.add_error("expires_at", "expires_at must be after given_at")
        sender, reference = data.get("sender"), data.get("reference")
        if sender and Consent.objects.filter(sender=sender, reference=reference).exists():
            self.add_error(
                "reference",
                "this sender already has a consent with this reference (a renewed consent "
                "needs a new reference; revoke the old one with the action)",
            )
        return data


@admin.register(Consent)
class ConsentAdmin(_TokenSearchMixin, AddOnlyAdmin):
    list_display = (
        "number", "sender", "scope", "given_at", "expires_at", "revoked_at", "reference",
    )  # fmt: skip
    list_filter = ("scope", "sender")
    list_select_related = ("sender",)
    search_fields = ("number", "reference")
    readonly_fields = ("created_at",)
    actions = ["revoke_now"]
    form = ConsentAddForm

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("compliance.revoke_consent")

    def save_model(self, request: HttpRequest, obj: Consent, form: Any, change: bool) -> None:
        data = form.cleaned_data
        consents_apply(
            rows=[ConsentData(
                number=data["number"], sender_id=data["sender"].pk, scope=data["scope"],
                given_at=data["given_at"], expires_at=data.get("expires_at"),
                revoked_at=None, reference=data["reference"],
            )],
            actor=actor_of(request),
        )  # fmt: skip
        saved = Consent.objects.get(sender=data["sender"], reference=data["reference"])
        obj.pk, obj.number_token = saved.pk, saved.number_token

    @admin.action(description="Revoke the selected consents now", permissions=["revoke"])
    def revoke_now(self, request: HttpRequest, queryset: QuerySet[Consent]) -> None:
        actor = actor_of(request)
        revoked = sum(
            consent_revoke(consent_id=pk, actor=actor)
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"{revoked} consent(s) revoked")


class SuppressionAddForm(forms.ModelForm):
    number = NumberField(max_length=32)
    sender = forms.ModelChoiceField(
        queryset=Sender.objects.filter(archived_at__isnull=True),
        required=False,
        help_text="leave empty to suppress the number for every sender",
    )

    class Meta:
        model = Suppression
        fields = ("number", "sender", "reason")


class LiftForm(forms.Form):
    reason = forms.CharField(max_length=200, help_text="why this number may be called again")


class SuppressionStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("lifted", "Lifted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "active":
            return queryset.filter(lifted_at__isnull=True)
        if self.value() == "lifted":
            return queryset.filter(lifted_at__isnull=False)
        return queryset


@admin.register(Suppression)
class SuppressionAdmin(_TokenSearchMixin, AddOnlyAdmin):
    list_display = (
        "__str__", "sender", "reason", "created_at", "created_by", "lifted_at", "lifted_by",
    )  # fmt: skip
    list_filter = (SuppressionStateFilter, "erasure", "sender")
    list_select_related = ("sender",)
    search_fields = ("number", "reason")
    readonly_fields = ("created_at", "created_by", "lifted_at", "lifted_by", "lift_reason")
    actions = ["lift_suppressions"]
    form = SuppressionAddForm

    def has_lift_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("compliance.lift_suppression")

    def save_model(self, request: HttpRequest, obj: Suppression, form: Any, change: bool) -> None:
        data = form.cleaned_data
        sender = data.get("sender")
        saved, created = suppression_add(
            number=data["number"], actor=actor_of(request),
            sender_dlt_id=sender.dlt_entity_id if sender else None, reason=data.get("reason", ""),
        )  # fmt: skip
        obj.pk, obj.number, obj.number_token = saved.pk, saved.number, saved.number_token
        if not created:
            self.message_user(request, f"{saved} was already active", level=messages.WARNING)

    @admin.action(description="Lift the selected suppressions", permissions=["lift"])
    def lift_suppressions(
        self, request: HttpRequest, queryset: QuerySet[Suppression]
    ) -> TemplateResponse | None:
        active = queryset.filter(lifted_at__isnull=True)
        form = LiftForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            actor = actor_of(request)
            lifted = 0
            for pk in active.values_list("pk", flat=True):
                try:
                    lifted += suppression_lift(
                        suppression_id=pk, actor=actor, reason=form.cleaned_data["reason"]
                    )
                except SuppressionError as exc:
                    self.message_user(request, str(exc), level=messages.ERROR)
            self.message_user(request, f"{lifted} suppression(s) lifted")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Lift suppressions",
            "opts": self.opts,
            "suppressions": list(active.select_related("sender")),
            "form": form,
        }
        return TemplateResponse(request, "admin/compliance/lift_suppressions.html", context)


class ErasureForm(forms.ModelForm):
    number = NumberField(max_length=32, help_text="the number to erase, in any usual form")
    confirm = forms.BooleanField(
        label="I understand this cannot be undone",
        help_text="The number is removed from contacts, call attempts, consents, suppressions "
        "and the audit log's clear text; it stays suppressed for every sender by its token.",
    )

    class Meta:
        model = Erasure
        fields = ("number", "reason", "confirm")


@admin.register(Erasure)
class ErasureAdmin(AddOnlyAdmin):
    """Erasing a person's number (DPDP): adding one here performs it."""

    list_display = ("id", "created_at", "requested_by", "reason", "counts")
    readonly_fields = ("number_token", "requested_by", "created_at", "counts")
    form = ErasureForm

    def save_model(self, request: HttpRequest, obj: Erasure, form: Any, change: bool) -> None:
        done = number_erase(
            number=form.cleaned_data["number"],
            actor=actor_of(request),
            reason=form.cleaned_data.get("reason", ""),
        )
        obj.pk, obj.number_token, obj.requested_by = done.pk, done.number_token, done.requested_by
        obj.created_at, obj.counts = done.created_at, done.counts

    def log_addition(self, request: HttpRequest, obj: Erasure, message: Any) -> Any:
        # The admin's history would otherwise store the form's change message; the erasure is in
        # the audit log already, and the history must not name the number.
        return super().log_addition(request, obj, "erased a number")


class AuditSenderFilter(admin.SimpleListFilter):
    """Entries of one sender, by its DLT id: named from the senders, no scan of the log."""

    title = "sender"
    parameter_name = "sender_dlt_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        senders = Sender.objects.order_by("name").values_list("dlt_entity_id", "name")
        return [(dlt_id, f"{name} ({dlt_id})") for dlt_id, name in senders]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(sender_dlt_id=value) if value else queryset


class AuditCampaignFilter(admin.SimpleListFilter):
    """Entries of one campaign by its id (the log keeps plain ids, never a campaign's row)."""

    title = "campaign"
    parameter_name = "campaign_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        ids = (
            AuditEntry.objects.exclude(campaign_id=None)
            .order_by("-campaign_id")
            .values_list("campaign_id", flat=True)
            .distinct()
        )
        return [(str(pk), f"campaign {pk}") for pk in ids]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            raise IncorrectLookupParameters(f"campaign_id={value!r} is not an id")
        return queryset.filter(campaign_id=int(value))


@admin.register(AuditEntry)
class AuditEntryAdmin(_TokenSearchMixin, ReadOnlyAdmin):
    """The compliance audit trail: its value is that nobody can change it after the fact.

    Newest first. Downloads stream in constant memory, with the changelist's filters and search
    applied: the "Export all filtered" buttons (GET export/csv/ and export/jsonl/ under this
    changelist with the changelist's own query string, e.g. ?kind=decision&sender_dlt_id=1101...),
    or the actions for the entries ticked.
    """

    # Narrow enough for 1280 px beside the filters (the purpose is a filter; the models sidebar
    # gives way: templates/admin/compliance/auditentry/change_list.html).
    list_display = (
        "id", "created", "kind", "actor", "number", "decision", "campaign_attempt", "sender",
    )  # fmt: skip
    list_filter = ("kind", "allowed", "purpose", AuditCampaignFilter, AuditSenderFilter)
    search_fields = ("campaign_id__exact", "attempt_id__exact", "actor")
    date_hierarchy = "created_at"
    ordering = ("-id",)
    show_full_result_count = False
    actions = ["export_csv", "export_jsonl"]

    # Callables, not the fields, and a time as text: a list's date column never wraps, nor does
    # a heading.
    @admin.display(description="created", ordering="created_at")
    def created(self, obj: AuditEntry) -> str:
        return date_format(timezone.localtime(obj.created_at), "DATETIME_FORMAT")

    @admin.display(description="decision", ordering="allowed")
    def decision(self, obj: AuditEntry) -> str:
        reasons = ", ".join(reason_label(code) for code in obj.reasons)
        if obj.allowed is None:
            return reasons
        verdict = "allowed" if obj.allowed else "blocked"
        return f"{verdict}: {reasons}" if reasons else verdict

    @admin.display(description="campaign/attempt", ordering="campaign_id")
    def campaign_attempt(self, obj: AuditEntry) -> str:
        return f"{obj.campaign_id or '-'} / {obj.attempt_id or '-'}"

    @admin.display(description="sender", ordering="sender_dlt_id")
    def sender(self, obj: AuditEntry) -> str:
        return obj.sender_dlt_id

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # The whole filtered log, not one page of it: the changelist's query string as it is.
        exports = []
        if self.has_export_permission(request):
            query = f"?{request.GET.urlencode()}" if request.GET else ""
            name = f"admin:{self.opts.app_label}_{self.opts.model_name}_export"
            exports = [(fmt, reverse(name, args=[fmt]) + query) for fmt in FORMATS]
        return super().changelist_view(request, {**(extra_context or {}), "exports": exports})

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("compliance.export_auditentry")

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_export"
        view = self.admin_site.admin_view(self.export_view)
        return [path("export/<str:fmt>/", view, name=name), *super().get_urls()]

    def export_view(self, request: HttpRequest, fmt: str) -> HttpResponseBase:
        if not (self.has_view_permission(request) and self.has_export_permission(request)):
            raise PermissionDenied
        if fmt not in FORMATS:
            raise Http404(f"no export format {fmt!r}")
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("unknown filter in the query string")
        return self._download(changelist.get_queryset(request), fmt)

    @admin.action(description="Export selected audit entries as CSV", permissions=["export"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[AuditEntry]) -> HttpResponseBase:
        return self._download(queryset, "csv")

    @admin.action(description="Export selected audit entries as JSON lines", permissions=["export"])
    def export_jsonl(
        self, request: HttpRequest, queryset: QuerySet[AuditEntry]
    ) -> HttpResponseBase:
        return self._download(queryset, "jsonl")

    def _download(self, entries: QuerySet[AuditEntry], fmt: str) -> StreamingHttpResponse:
        response = StreamingHttpResponse(
            audit_stream(entries=entries.order_by("id"), fmt=fmt), content_type=FORMATS[fmt]
        )
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{fmt}"'
        return response
