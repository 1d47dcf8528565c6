"""Admin logins lock out after repeated failures, per username and address (django-axes)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery 42"


@pytest.fixture
def officer() -> User:
    return User.objects.create_superuser("officer", "officer@example.com", PASSWORD)


def _login(client: Client, username: str, password: str) -> int:
    response = client.post(
        "/admin/login/?next=/admin/", {"username": username, "password": password}
    )
    return int(response.status_code)


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_five_wrong_passwords_lock_the_account_from_that_address(officer: User) -> None:
    attacker = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(5):
        _login(attacker, "officer", "guess")
    assert _login(attacker, "officer", PASSWORD) == 429
    assert not _logged_in(attacker)


def test_four_wrong_passwords_do_not_lock(officer: User) -> None:
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(4):
        assert _login(client, "officer", "guess") == 200  # the form again, with its error
    assert _login(client, "officer", PASSWORD) == 302
    assert _logged_in(client)


def test_a_lockout_holds_only_that_username_at_that_address(officer: User) -> None:
    User.objects.create_superuser("manager", "manager@example.com", PASSWORD)
    attacker = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(5):
        _login(attacker, "officer", "guess")

    colleague = Client(REMOTE_ADDR="203.0.113.7")
    assert _login(colleague, "manager", PASSWORD) == 302  # another user, same address
    assert _logged_in(colleague)

    elsewhere = Client(REMOTE_ADDR="198.51.100.20")
    assert _login(elsewhere, "officer", PASSWORD) == 302  # the same user, another address
    assert _logged_in(elsewhere)
