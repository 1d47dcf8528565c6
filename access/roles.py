"""Who may do what: the role matrix, in one place, and the service that makes the groups match it.

A role is a Django group whose permissions are exactly ROLES[role]: `roles_setup()` adds what is
missing and removes what is not in the matrix, so a permission granted or taken away by hand in
the admin is put back by the next `manage.py setup_roles` (or migration). Nobody gets delete:
call history is archived, never deleted, and deleting anything else is for a superuser.

Admin actions ask for these permissions through their `permissions=[...]` (campaigns.admin,
compliance.admin): an action is neither offered nor run without them.

A permission of a model added later needs the model's migration to have run: when ROLES gains
one, add an access migration that depends on it and calls roles_setup (as 0001_roles does).
"""

from __future__ import annotations

import logging

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.db import transaction

log = logging.getLogger(__name__)

CAMPAIGN_MANAGER = "campaign_manager"
COMPLIANCE_OFFICER = "compliance_officer"
AUDITOR = "auditor"
TELEPHONY_ADMIN = "telephony_admin"

ROLES: dict[str, frozenset[str]] = {
    # Builds and runs campaigns; sees what was dialed, changes no compliance data.
    CAMPAIGN_MANAGER: frozenset({
        "campaigns.view_campaign", "campaigns.add_campaign", "campaigns.change_campaign",
        "campaigns.scrub_campaign", "campaigns.start_campaign", "campaigns.pause_campaign",
        "campaigns.archive_campaign",
        "campaigns.view_contactlist", "campaigns.add_contactlist", "campaigns.change_contactlist",
        "campaigns.view_contact", "campaigns.add_contact", "campaigns.change_contact",
        "campaigns.view_callattempt",
        # What a campaign is built from: chosen in its form, changed by the other roles.
        "campaigns.view_trunk", "campaigns.view_callerid", "compliance.view_sender",
    }),
    # Owns who may be called and from which numbers, and answers for the audit trail.
    COMPLIANCE_OFFICER: frozenset({
        "compliance.view_sender", "compliance.add_sender", "compliance.change_sender",
        "campaigns.view_callerid", "campaigns.add_callerid", "campaigns.change_callerid",
        "campaigns.archive_callerid",
        "compliance.view_suppression", "compliance.add_suppression",
        "compliance.lift_suppression",
        "compliance.view_consent", "compliance.add_consent", "compliance.revoke_consent",
        "compliance.view_registryversion", "compliance.load_registry",
        "compliance.view_auditentry", "compliance.export_auditentry",
        "compliance.view_erasure", "compliance.add_erasure",
        "campaigns.view_campaign",
    }),
    # Sees everything, exports the audit log, changes nothing.
    AUDITOR: frozenset({
        "campaigns.view_campaign", "campaigns.view_contactlist", "campaigns.view_contact",
        "campaigns.view_callattempt", "campaigns.view_trunk", "campaigns.view_callerid",
        "compliance.view_sender", "compliance.view_registryversion", "compliance.view_consent",
        "compliance.view_suppression", "compliance.view_auditentry", "compliance.view_erasure",
        "compliance.export_auditentry",
        "telephony.view_engineprocess",
        # Who holds which role is part of what an auditor checks.
        "auth.view_user", "auth.view_group",
    }),
    # Runs the carrier side: trunks and the numbers presented on them.
    TELEPHONY_ADMIN: frozenset({
        "campaigns.view_trunk", "campaigns.add_trunk", "campaigns.change_trunk",
        "campaigns.view_callerid", "campaigns.add_callerid", "campaigns.change_callerid",
        "campaigns.archive_callerid",
        "compliance.view_sender",  # a caller ID belongs to a sender
        "campaigns.view_campaign",
    }),
}  # fmt: skip


class RoleSetupError(Exception):
    """The matrix names a permission that does not exist (a typo, or a model not migrated)."""


def _key(perm: str) -> tuple[str, str]:
    app_label, codename = perm.split(".", 1)
    return app_label, codename


def roles_setup(*, registry: Apps | None = None) -> list[str]:
    """Create the role groups and make each one's permissions exactly ROLES; idempotent.

    Returns what it changed, one line each (nothing when the groups already match). `registry`
    is a migration's historical apps; the project's apps otherwise.
    """
    registry = registry or global_apps
    group_model = registry.get_model("auth", "Group")
    permission_model = registry.get_model("auth", "Permission")
    wanted = {_key(perm) for perms in ROLES.values() for perm in perms}
    known = {
        (app_label, codename): pk
        for pk, app_label, codename in permission_model.objects.filter(
            content_type__app_label__in={app_label for app_label, _ in wanted},
            codename__in={codename for _, codename in wanted},
        ).values_list("pk", "content_type__app_label", "codename")
    }
    missing = sorted(f"{app}.{codename}" for app, codename in wanted - known.keys())
    if missing:
        raise RoleSetupError(f"unknown permissions in access.roles.ROLES: {', '.join(missing)}")

    changes: list[str] = []
    with transaction.atomic():
        for role, perms in ROLES.items():
            group, created = group_model.objects.get_or_create(name=role)
            if created:
                changes.append(f"{role}: group created")
            held = {
                (app_label, codename): pk
                for pk, app_label, codename in group.permissions.values_list(
                    "pk", "content_type__app_label", "codename"
                )
            }
            want = {_key(perm) for perm in perms}
            added = sorted(want - held.keys())
            removed = sorted(held.keys() - want)
            if added:
                group.permissions.add(*(known[key] for key in added))
                changes.append(f"{role}: added {', '.join(f'{a}.{c}' for a, c in added)}")
            if removed:
                group.permissions.remove(*(held[key] for key in removed))
                changes.append(f"{role}: removed {', '.join(f'{a}.{c}' for a, c in removed)}")
    for line in changes:
        log.debug("roles: %s", line)  # setup_roles prints them; migrate stays quiet
    return changes
