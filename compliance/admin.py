"""Admin for senders, the DND registry, suppressions and the audit log."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from compliance.models import AuditEntry, DndEntry, RegistryVersion, Sender, Suppression


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
    list_display = ("id", "as_of", "loaded_at", "rows", "source")
    date_hierarchy = "as_of"


@admin.register(DndEntry)
class DndEntryAdmin(ReadOnlyAdmin):
    # A hand edit would silently diverge from the official registry it is loaded from.
    list_display = ("number", "preferences")
    search_fields = ("number",)
    # Millions of rows: counting them on every page load is not worth it.
    show_full_result_count = False


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("number", "sender", "reason", "created_at")
    list_filter = ("sender",)
    list_select_related = ("sender",)
    search_fields = ("number", "reason")
    readonly_fields = ("created_at",)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The compliance audit trail: its value is that nobody can change it after the fact."""

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
