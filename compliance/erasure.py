"""Erasing a person's number (DPDP Act 2023, s.12: the right to erasure).

What goes: the number in clear, wherever it is stored (consents, suppressions, the audit log's
clear-text column, the admin's change history, and, through the `number_erasing` signal, every
other app's rows: contacts with their names and custom fields, call attempts). What stays: the
number's keyed token (compliance.keys) in the audit log, so the chain still verifies and every
decision about that person stays provable, and a suppression for every sender matched by that
token, so an erasure never leads to the person being called again (the gate's `erased` reason
blocks every purpose until a compliance officer lifts it, audited).

The DND registry tables are the regulator's data, not ours, and keep protecting the number; they
are left as loaded.
"""

from __future__ import annotations

from typing import cast

from django.contrib.admin.models import LogEntry
from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal

from compliance.audit import audit_append_many
from compliance.keys import number_token
from compliance.models import AuditEntry, Consent, Erasure, Suppression
from compliance.numbers import to_e164

# Sent inside the erasure's transaction with number= (E.164) and token=; each receiver blanks
# the number in its own app's rows and returns {what: rows changed}. A receiver that raises
# rolls the whole erasure back: it is all or nothing.
number_erasing = Signal()

ERASED_REPR = "(erased)"


def number_erase(*, number: str, actor: str, reason: str = "") -> Erasure:
    """Erase a number (national, trunk-0 or E.164) everywhere; raises InvalidNumber."""
    e164 = to_e164(number, region="IN")
    token = number_token(e164)
    # Not durable: the admin's add view already runs in a transaction of its own.
    with transaction.atomic():
        counts: dict[str, int] = {}
        for _receiver, result in number_erasing.send(sender=Erasure, number=e164, token=token):
            counts.update(cast(dict[str, int], result) or {})
        counts["consents"] = (
            Consent.objects.filter(number_token=token).exclude(number="").update(number="")
        )
        counts["suppressions"] = (
            Suppression.objects.filter(number_token=token).exclude(number="").update(number="")
        )
        # The one UPDATE the audit table's guards allow: the MAC covers the token, not this.
        counts["audit_entries"] = (
            AuditEntry.objects.filter(number_token=token).exclude(number="").update(number="")
        )
        counts["admin_history"] = _admin_history_scrub(e164)
        erasure = Erasure.objects.create(
            number_token=token, requested_by=actor[:150], reason=reason[:200], counts=counts
        )
        suppression = Suppression.objects.create(
            number="",
            number_token=token,
            sender=None,
            reason=f"erased (erasure {erasure.pk})",
            erasure=True,
            created_by=actor[:150],
        )
        audit_append_many(
            [
                {
                    "kind": AuditEntry.Kind.ERASURE,
                    "actor": actor,
                    "token": token,
                    "detail": {"erasure_id": erasure.pk, "reason": reason[:200], "counts": counts},
                },
                {
                    "kind": AuditEntry.Kind.SUPPRESSION_ADDED,
                    "actor": actor,
                    "token": token,
                    "detail": {
                        "suppression_id": suppression.pk,
                        "scope": "all senders, every purpose",
                        "reason": suppression.reason,
                        "erasure": True,
                    },
                },
            ]
        )
    return erasure


def _admin_history_scrub(e164: str) -> int:
    """The admin's change history names objects by their str(), which for consents, contacts
    and attempts includes the number: replace those names."""
    national = e164[-10:]
    return LogEntry.objects.filter(
        Q(object_repr__contains=e164) | Q(object_repr__contains=national)
    ).update(object_repr=ERASED_REPR)
