"""Roles through the admin: each role sees, adds and runs exactly what access.roles.ROLES allows.

Table-driven over admin.site._registry, so an admin another change adds is covered as soon as it
is registered: its changelist, add page and every action, offered or forged, per role.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Model
from django.http import HttpRequest
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from access.roles import (
    AUDITOR,
    CAMPAIGN_MANAGER,
    COMPLIANCE_OFFICER,
    ROLES,
    TELEPHONY_ADMIN,
    roles_setup,
)
from campaigns.models import Campaign, CampaignStatus
from compliance.models import AuditEntry, Consent, Erasure, RegistryVersion, Suppression
from tests.helpers.factories import make_call_attempt, make_campaign, make_contact, make_user

pytestmark = pytest.mark.django_db

LIFECYCLE = {
    "preflight_campaigns",
    "schedule_campaigns",
    "start_campaigns",
    "pause_campaigns",
    "resume_campaigns",
    "stop_campaigns",
}


# -- helpers -------------------------------------------------------------------------------------
class _MatrixUser:
    """A user holding exactly a set of "app.codename" permissions, without the database: what
    the matrix says, to compute what the admin should allow."""

    is_active = is_staff = is_authenticated = True
    is_superuser = is_anonymous = False

    def __init__(self, perms: frozenset[str]) -> None:
        self.perms = perms

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return perm in self.perms

    def has_perms(self, perms: list[str], obj: object = None) -> bool:
        return all(p in self.perms for p in perms)

    def has_module_perms(self, app_label: str) -> bool:
        return any(p.startswith(f"{app_label}.") for p in self.perms)


def _matrix_request(perms: frozenset[str]) -> HttpRequest:
    request = RequestFactory().get("/")
    request.user = _MatrixUser(perms)  # type: ignore[assignment]
    return request


def _admins() -> list[tuple[type[Model], admin.ModelAdmin]]:
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def _url(model: type[Model], view: str) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}")


def _actions(modeladmin: admin.ModelAdmin) -> dict[str, Callable[..., Any]]:
    # Every action the admin has, offered to this user or not (get_actions() filters them).
    base = modeladmin._get_base_actions()  # type: ignore[attr-defined]
    return {name: func for func, name, _ in base}


def _allowed(modeladmin: admin.ModelAdmin, func: Callable[..., Any], perms: frozenset[str]) -> bool:
    request = _matrix_request(perms)
    return all(
        getattr(modeladmin, f"has_{p}_permission")(request)
        for p in getattr(func, "allowed_permissions", ())
    )


def _offered(response: Any) -> set[str]:
    form = response.context["action_form"]
    if form is None:  # no action at all
        return set()
    return {name for name, _ in form.fields["action"].choices if name}


def _snapshot() -> dict[str, list[dict[str, Any]]]:
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for model, _ in _admins()
    }


@pytest.fixture
def world() -> None:
    """One object of each model, so that every changelist has something to act on."""
    campaign = make_campaign(purpose="promotional", category=3)
    make_contact(campaign=campaign)
    running = make_campaign(status=CampaignStatus.RUNNING)
    make_call_attempt(contact=make_contact(campaign=running))
    Consent.objects.create(
        number="+919800000001", sender=campaign.sender, scope="promotional",
        given_at=timezone.now(), reference="ref-1",
    )  # fmt: skip
    Suppression.objects.create(number="+919800000002", sender=campaign.sender, reason="asked")
    RegistryVersion.objects.create(as_of=timezone.now())
    AuditEntry.objects.create(kind="decision", number="+919800000003")
    Erasure.objects.create(number_token="0" * 64, requested_by="test")


# -- a view-only user ----------------------------------------------------------------------------
def test_a_view_only_user_is_offered_no_lifecycle_action_and_a_forged_start_does_nothing(
    client: Client,
) -> None:
    campaign = make_campaign()
    client.force_login(make_user(perms=("campaigns.view_campaign",)))

    changelist = client.get(reverse("admin:campaigns_campaign_changelist"))
    assert changelist.status_code == 200
    assert _offered(changelist) & LIFECYCLE == set()

    for action in sorted(LIFECYCLE):
        client.post(
            reverse("admin:campaigns_campaign_changelist"),
            {"action": action, "_selected_action": [str(campaign.pk)]},
        )
    stored = Campaign.objects.get(pk=campaign.pk)
    assert (stored.status, stored.preflight) == (CampaignStatus.DRAFT, None)


# -- the matrix, through every registered admin --------------------------------------------------
def test_every_admin_action_declares_its_permission() -> None:
    undeclared = []
    for model, modeladmin in _admins():
        for name, func in _actions(modeladmin).items():
            perms = getattr(func, "allowed_permissions", ())
            if not perms or _allowed(modeladmin, func, frozenset()):
                undeclared.append(f"{model._meta.label}.{name}")
            for p in perms:
                assert hasattr(modeladmin, f"has_{p}_permission"), (model, name, p)
    assert undeclared == [], "actions any staff user may run: declare permissions=[...]"


@pytest.mark.slow
@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_role_gets_exactly_what_the_matrix_allows_in_every_admin(
    client: Client, world: None, role: str
) -> None:
    perms = ROLES[role]
    client.force_login(make_user(role=role))
    request = _matrix_request(perms)

    for model, modeladmin in _admins():
        opts = model._meta
        label = opts.label
        can_see = bool(
            {f"{opts.app_label}.{a}_{opts.model_name}" for a in ("view", "change")} & perms
        )
        changelist = client.get(_url(model, "changelist"))
        assert changelist.status_code == (200 if can_see else 403), (role, label)

        can_add = modeladmin.has_add_permission(request)
        assert not can_add or f"{opts.app_label}.add_{opts.model_name}" in perms, (role, label)
        assert client.get(_url(model, "add")).status_code == (200 if can_add else 403), (
            role,
            label,
        )

        actions = _actions(modeladmin)
        expected = {n for n, f in actions.items() if can_see and _allowed(modeladmin, f, perms)}
        offered = _offered(changelist) if can_see else set()
        assert offered == expected, (role, label)

        pks = [str(pk) for pk in model._default_manager.values_list("pk", flat=True)]
        for name in sorted(set(actions) - offered):
            before = _snapshot()
            response = client.post(
                _url(model, "changelist"),
                {"action": name, "_selected_action": pks, "post": "yes"},
            )
            assert response.status_code in (200, 302, 403), (role, label, name)
            assert not response.has_header("Content-Disposition"), (role, label, name)
            assert _snapshot() == before, (role, label, name)


def _offered_by_model(client: Client) -> dict[str, set[str]]:
    offered = {}
    for model, _ in _admins():
        response = client.get(_url(model, "changelist"))
        if response.status_code == 200:
            offered[model._meta.label] = _offered(response)
    return offered


def test_the_auditor_sees_everything_and_is_offered_only_exports(client: Client) -> None:
    client.force_login(make_user(role=AUDITOR))

    offered = _offered_by_model(client)

    assert set(offered) == {model._meta.label for model, _ in _admins()}, (
        "every registered model: add its view permission to ROLES[AUDITOR]"
    )
    assert {name for names in offered.values() for name in names if "export" not in name} == set()
    assert offered["compliance.AuditEntry"] == {"export_csv", "export_jsonl"}
    for model, _ in _admins():
        assert client.get(_url(model, "add")).status_code == 403, model


def test_the_campaign_manager_runs_campaigns_and_touches_no_compliance_data(
    client: Client, world: None
) -> None:
    client.force_login(make_user(role=CAMPAIGN_MANAGER))

    offered = _offered_by_model(client)

    assert offered["campaigns.Campaign"] == LIFECYCLE | {"archive_campaigns"}
    assert all(not names for label, names in offered.items() if label.startswith("compliance."))
    assert "compliance.AuditEntry" not in offered
    assert client.get(reverse("admin:campaigns_campaign_add")).status_code == 200
    attempt = make_call_attempt()
    url = reverse("admin:campaigns_callattempt_change", args=[attempt.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"sip_code": "200"}).status_code == 403


def test_the_telephony_admin_runs_trunks_but_not_campaigns(client: Client, world: None) -> None:
    client.force_login(make_user(role=TELEPHONY_ADMIN))

    offered = _offered_by_model(client)

    assert client.get(reverse("admin:campaigns_trunk_add")).status_code == 200
    assert client.get(reverse("admin:campaigns_campaign_add")).status_code == 403
    assert offered["campaigns.Campaign"] == set()
    assert offered["campaigns.CallerId"] == {"archive_caller_ids"}
    assert "compliance.Suppression" not in offered


def test_the_compliance_officer_runs_compliance_data_and_only_views_campaigns(
    client: Client, world: None
) -> None:
    client.force_login(make_user(role=COMPLIANCE_OFFICER))

    offered = _offered_by_model(client)

    assert offered["campaigns.Campaign"] == set()
    assert client.get(reverse("admin:campaigns_campaign_add")).status_code == 403
    assert client.get(reverse("admin:compliance_suppression_add")).status_code == 200
    assert offered["compliance.AuditEntry"] == {"export_csv", "export_jsonl"}
    assert "delete_selected" not in set().union(*offered.values())
    assert "campaigns.Trunk" not in offered


# -- setup_roles and the migration ---------------------------------------------------------------
def _group_perms() -> dict[str, set[str]]:
    return {
        group.name: {
            f"{p.content_type.app_label}.{p.codename}"
            for p in group.permissions.select_related("content_type")
        }
        for group in Group.objects.filter(name__in=ROLES)
    }


def test_setup_roles_is_idempotent_and_restores_the_matrix(capsys: Any) -> None:
    call_command("setup_roles")
    first = _group_perms()
    capsys.readouterr()

    call_command("setup_roles")
    assert "nothing changed" in capsys.readouterr().out
    assert _group_perms() == first == {role: set(perms) for role, perms in ROLES.items()}

    group = Group.objects.get(name=CAMPAIGN_MANAGER)
    group.permissions.remove(Permission.objects.get(codename="start_campaign"))
    group.permissions.add(Permission.objects.get(codename="delete_campaign"))
    call_command("setup_roles")
    out = capsys.readouterr().out
    assert "campaign_manager: added campaigns.start_campaign" in out
    assert "campaign_manager: removed campaigns.delete_campaign" in out
    assert _group_perms() == first


def test_the_migration_creates_the_custom_permissions_and_the_groups() -> None:
    # As on a fresh database: the custom permissions do not exist yet when it runs.
    Permission.objects.filter(codename__in=["start_campaign", "lift_suppression"]).delete()
    Group.objects.filter(name__in=ROLES).delete()
    migration = importlib.import_module("access.migrations.0001_roles")
    state_apps = MigrationExecutor(connection).loader.project_state(("access", "0001_roles")).apps

    migration.create_roles(state_apps, SimpleNamespace(connection=connection))

    assert _group_perms() == {role: set(perms) for role, perms in ROLES.items()}
    assert roles_setup() == []
