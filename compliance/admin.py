"""Admin for senders, the DND registry, suppressions and the audit log."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponseBadRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import URLPattern, path
from django.utils import timezone

from compliance.exports import FORMATS, audit_stream
from compliance.models import AuditEntry, Consent, RegistryVersion, Sender, Suppression


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable only: these rows are written by loaders and the dialer, never by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


@admin.register(Sender)
class SenderAdmin(admin.ModelAdmin):
    list_display = ("name", "dlt_entity_id", "sector")
    list_filter = ("sector",)
    search_fields = ("name", "dlt_entity_id")


@admin.register(RegistryVersion)
class RegistryVersionAdmin(ReadOnlyAdmin):
    # Loaded only by `manage.py load_registry`: a hand edit would diverge from the official data.
    list_display = (
        "id", "kind", "as_of", "completed_at", "entries", "added", "changed", "removed",
        "rejected", "source",
    )  # fmt: skip
    date_hierarchy = "as_of"


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    list_display = (
        "number",
        "sender",
        "scope",
        "given_at",
        "expires_at",
        "revoked_at",
        "reference",
    )
    list_filter = ("scope", "sender")
    list_select_related = ("sender",)
    search_fields = ("number", "reference")
    readonly_fields = ("created_at",)
    actions = ["revoke_now"]

    @admin.action(description="Revoke the selected consents now")
    def revoke_now(self, request: HttpRequest, queryset: QuerySet[Consent]) -> None:
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{revoked} consent(s) revoked")


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("number", "sender", "reason", "created_at")
    list_filter = ("sender",)
    list_select_related = ("sender",)
    search_fields = ("number", "reason")
    readonly_fields = ("created_at",)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The compliance audit trail: its value is that nobody can change it after the fact.

    Downloads stream in constant memory, with the changelist's filters and search applied:
    the actions (with "select all"), or GET export/csv/ and export/jsonl/ under this changelist
    with the changelist's own query string (e.g. ?kind=decision&sender_dlt_id=1101...).
    """

    list_display = (
        "id",
        "created_at",
        "kind",
        "number",
        "allowed",
        "purpose",
        "campaign_id",
        "attempt_id",
        "sender_dlt_id",
    )
    list_filter = ("kind", "allowed", "purpose")
    search_fields = ("number", "campaign_id__exact", "attempt_id__exact")
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["export_csv", "export_jsonl"]

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_export"
        view = self.admin_site.admin_view(self.export_view)
        return [path("export/<str:fmt>/", view, name=name), *super().get_urls()]

    def export_view(self, request: HttpRequest, fmt: str) -> HttpResponseBase:
        if not self.has_view_permission(request):
            raise PermissionDenied
        if fmt not in FORMATS:
            raise Http404(f"no export format {fmt!r}")
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("unknown filter in the query string")
        return self._download(changelist.get_queryset(request), fmt)

    @admin.action(description="Export selected audit entries as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[AuditEntry]) -> HttpResponseBase:
        return self._download(queryset, "csv")

    @admin.action(description="Export selected audit entries as JSON lines")
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
