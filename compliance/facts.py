"""Everything the last-moment check needs to know about one number, in one database round trip.

decide() runs before every dial (target: p99 <= 2 ms). Built through the ORM, its five lookups
cost about 0.5 ms each in query compilation alone, so they are one hand-written statement here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection

from compliance.keys import number_token
from compliance.registry import RegistryState, number_key


@dataclass(frozen=True)
class NumberFacts:
    sender_id: int | None
    suppressed: bool
    erased: bool  # the number was erased: never called again, whatever the purpose
    prefs: int | None  # registry preference mask; None: no row (or no registry asked for)
    consent: str | None  # reference of a consent valid at the time, for the scope asked
    attempts_today: int  # allowed decisions for this number and sender since local midnight
    answered_promo_today: int


def _sql(*, registry_table: str | None, scope: str | None) -> str:
    disposition = (
        "detail ->> 'disposition'"
        if connection.vendor == "postgresql"
        else "json_extract(detail, '$.disposition')"
    )
    prefs = (
        f"(SELECT prefs FROM {registry_table} WHERE number = %(key)s)"  # noqa: S608 - ours
        if registry_table
        else "NULL"
    )
    consent = (
        """(SELECT reference FROM compliance_consent
            WHERE number_token = %(token)s AND sender_id = (SELECT id FROM s)
              AND scope = %(scope)s
              AND given_at <= %(at)s
              AND (expires_at IS NULL OR expires_at > %(at)s)
              AND (revoked_at IS NULL OR revoked_at > %(at)s)
            ORDER BY given_at DESC LIMIT 1)"""
        if scope
        else "NULL"
    )
    return f"""
        WITH s AS (SELECT id FROM compliance_sender WHERE dlt_entity_id = %(sender)s)
        SELECT
          (SELECT id FROM s),
          -- One probe for both: 0 none, 1 suppressed, 2 erased (an erasure's suppression is
          -- for every sender, so it is among these rows).
          (SELECT COALESCE(MAX(CASE WHEN erasure THEN 2 ELSE 1 END), 0)
             FROM compliance_suppression
            WHERE number_token = %(token)s AND lifted_at IS NULL
              AND (sender_id IS NULL OR sender_id = (SELECT id FROM s))),
          {prefs},
          {consent},
          (SELECT COUNT(*) FROM compliance_auditentry
            WHERE number_token = %(token)s AND sender_dlt_id = %(sender)s
              AND created_at >= %(day)s AND kind = 'decision' AND allowed = %(true)s),
          (SELECT COUNT(*) FROM compliance_auditentry
            WHERE number_token = %(token)s AND sender_dlt_id = %(sender)s
              AND created_at >= %(day)s AND kind = 'outcome' AND purpose = 'promotional'
              AND {disposition} = 'answered')
    """  # noqa: S608 - every value is a parameter; table names are ours


def number_facts(
    *,
    number: str,
    sender_dlt_id: str,
    at: dt.datetime,
    day_start: dt.datetime,
    registry: RegistryState | None,
    consent_scope: str | None,
) -> NumberFacts:
    """One statement: sender, suppression, registry row, consent and today's counts."""
    ops = connection.ops
    params: dict[str, Any] = {
        "sender": sender_dlt_id,
        "token": number_token(number),
        "key": number_key(number),
        "scope": consent_scope,
        "at": ops.adapt_datetimefield_value(at),
        "day": ops.adapt_datetimefield_value(day_start),
        "true": True,
    }
    sql = _sql(registry_table=registry.table if registry else None, scope=consent_scope)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assert row is not None
    return NumberFacts(
        sender_id=row[0],
        suppressed=int(row[1]) >= 1,
        erased=int(row[1]) == 2,
        prefs=None if row[2] is None else int(row[2]),
        consent=row[3],
        attempts_today=int(row[4]),
        answered_promo_today=int(row[5]),
    )
