"""Where an import's contacts wait while the file is read: a temporary table of this connection.

Rows are staged a batch at a time (COPY on PostgreSQL, executemany on SQLite), so the import
holds one batch in memory rather than the file; duplicates are then found, and the contacts
written, by SQL over the staged rows. Everything happens inside the caller's transaction: a
rejected file is rolled back along with its stage.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from campaigns.models import Contact, ContactStatus

STAGE_BATCH = 10_000
INSERT_LINES = 100_000
_STAGE = "contacts_import_stage"
_CONTACTS = Contact._meta.db_table
# Table and column names below are ours, never the file's: the S608 warnings are noise.
_COLUMNS = "line, raw, number, name, fields, time_zone"
# Each staged row with the first line its number appears on.
_FIRSTS = (
    f"SELECT {_COLUMNS}, min(line) OVER (PARTITION BY number) AS first_line "  # noqa: S608
    f"FROM {_STAGE}"
)
_EXISTING = f"SELECT 1 FROM {_CONTACTS} c WHERE c.campaign_id = %s AND c.number = s.number"  # noqa: S608

StagedRow = tuple[int, str, str, str, str, str]  # line, raw, number (E.164), name, fields, zone


@dataclass(frozen=True)
class Duplicate:
    line: int
    raw: str
    number: str
    first_line: int  # == line when the number is already a contact of the campaign


class Stage:
    def __init__(self) -> None:
        self._batch: list[StagedRow] = []
        self.rows = 0
        self.last_line = 0
        fields_type = "jsonb" if connection.vendor == "postgresql" else "text"
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {_STAGE}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {_STAGE} (line integer NOT NULL, raw text NOT NULL, "
                f"number text NOT NULL, name text NOT NULL, fields {fields_type} NOT NULL, "
                "time_zone text NOT NULL)"
            )

    def add(self, row: StagedRow) -> None:
        self._batch.append(row)
        if len(self._batch) >= STAGE_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self._batch:
            return
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # One COPY per batch, not one for the file: each stays well inside the
                # statement timeout however slowly the file is read.
                with cursor.copy(f"COPY {_STAGE} ({_COLUMNS}) FROM STDIN") as copy:
                    for row in self._batch:
                        copy.write_row(row)
            else:
                cursor.executemany(
                    f"INSERT INTO {_STAGE} ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)",  # noqa: S608
                    self._batch,
                )
        self.rows += len(self._batch)
        self.last_line = self._batch[-1][0]
        self._batch.clear()

    def duplicates(self, *, campaign_id: int, limit: int) -> tuple[list[Duplicate], int]:
        """The first `limit` rows, by line, whose number came earlier in the file or is already a
        contact of the campaign; and how many such rows there are in all."""
        self.flush()
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT s.line, s.raw, s.number, s.first_line, count(*) OVER () "  # noqa: S608
                f"FROM ({_FIRSTS}) s WHERE s.line <> s.first_line OR EXISTS ({_EXISTING}) "
                "ORDER BY s.line LIMIT %s",
                [campaign_id, limit],
            )
            rows = cursor.fetchall()
        found = [Duplicate(line, raw, number, first) for line, raw, number, first, _ in rows]
        return found, (rows[0][4] if rows else 0)

    def insert_contacts(self, *, campaign_id: int, contact_list_id: int) -> int:
        """Write each number's first row that is not a contact of the campaign yet, due now, in
        file order; return how many were written.

        One INSERT per INSERT_LINES lines of the file, in file order, so that no statement runs
        into the statement timeout however long the file: a number's later rows, in a later
        chunk, find the contact its first row made.
        """
        self.flush()
        written = 0
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE INDEX {_STAGE}_line ON {_STAGE} (line)")
            for start in range(0, self.last_line + 1, INSERT_LINES):
                cursor.execute(
                    f"INSERT INTO {_CONTACTS} (campaign_id, contact_list_id, number, name, fields, "  # noqa: S608
                    "status, attempts, next_attempt_at, last_disposition, time_zone) "
                    "SELECT %s, %s, s.number, s.name, s.fields, %s, 0, NULL, '', s.time_zone "
                    f"FROM ({_FIRSTS} WHERE line >= %s AND line < %s) s "
                    f"WHERE s.line = s.first_line AND NOT EXISTS ({_EXISTING}) ORDER BY s.line",
                    [
                        campaign_id,
                        contact_list_id,
                        ContactStatus.PENDING.value,
                        start,
                        start + INSERT_LINES,
                        campaign_id,
                    ],
                )
                written += cursor.rowcount
        return written

    def drop(self) -> None:
        self._batch.clear()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {_STAGE}")
