"""Keys derived from AUDIT_KEY: one for the audit chain's MAC, one for number tokens.

A number token is HMAC-SHA256 of the E.164 number. The audit log hashes the token, never the
number, so a person's number can be erased from every table (DPDP Act 2023, s.12) while the
chain still verifies and every decision stays provable for that token. Keyed, so the token of a
known number cannot be computed (and a list of tokens cannot be reversed by hashing every
Indian number) without the key. AUDIT_KEY must never change: every stored token and chain MAC
depends on it.
"""

from __future__ import annotations

import hmac
from functools import lru_cache

from django.conf import settings

# Used only when settings has no AUDIT_KEY (the development defaults set one).
_DEV_KEY = "dev-only-audit-key"


@lru_cache(maxsize=4)
def _derived(key: str, purpose: bytes) -> bytes:
    return hmac.digest(key.encode(), purpose, "sha256")


def _key() -> str:
    return str(getattr(settings, "AUDIT_KEY", "") or _DEV_KEY)


def number_token(number: str) -> str:
    """The keyed token of a number as stored (E.164); "" for no number."""
    if not number:
        return ""
    return hmac.digest(_derived(_key(), b"number-token"), number.encode(), "sha256").hex()


def token_function() -> tuple[bytes, str]:
    """The token key, for loops over many numbers (scrub): hmac.digest(key, n, 'sha256')."""
    return _derived(_key(), b"number-token"), "sha256"


def chain_mac(payload: bytes) -> str:
    """The audit chain's MAC of one entry's canonical serialisation."""
    return hmac.digest(_derived(_key(), b"audit-chain"), payload, "sha256").hex()
