"""Admin pieces for call history: kept, never deleted; archived objects out of the way."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import Model
from django.http import HttpRequest, HttpResponse


def has_model_perm(request: HttpRequest, modeladmin: admin.ModelAdmin, action: str) -> bool:
    """The user's `<app>.<action>_<model>` permission: what an admin action's permissions=[...]
    asks of has_<action>_permission."""
    opts = modeladmin.opts
    return request.user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}")


class KeepsHistoryAdmin(admin.ModelAdmin):
    """An object with call history is never deleted, whatever the user's permissions: its
    delete is not offered and a forged one is refused (403); the page says what to do instead."""

    history_note = "It has call history, so it cannot be deleted: archive it instead."

    def has_history(self, obj: Any) -> bool:
        raise NotImplementedError

    def has_delete_permission(self, request: HttpRequest, obj: Any | None = None) -> bool:
        if obj is not None and self.has_history(obj):
            return False
        return super().has_delete_permission(request, obj)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method == "GET" and super().has_delete_permission(request):
            obj: Model | None = self.get_object(request, unquote(object_id))
            if obj is not None and self.has_history(obj):
                self.message_user(request, self.history_note, level=messages.INFO)
        return super().change_view(request, object_id, form_url, extra_context)
