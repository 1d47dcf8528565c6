"""Where an import's rows wait, and how its contacts are written: batch by batch, as read.

Each batch of rows is staged in a temporary table of this connection (COPY on PostgreSQL,
executemany on SQLite) and its contacts written at once by INSERT ... SELECT: a number's first
row wins, later rows and numbers already in the campaign are skipped by the unique constraint.
So the import holds a few batches in memory rather than the file, and no statement grows with
the file. At the end the stage, which keeps every row, names the duplicates.

On PostgreSQL a writer thread makes those calls while the caller parses the next batch: the
server's work (COPY, index upkeep, foreign-key checks) runs on another core instead of after
the parsing. The thread uses the caller's connection, so everything stays in the caller's
transaction; the caller must not use the connection until the stage is closed. A rejected
file is rolled back with its stage and its contacts.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from django.db import connection

from campaigns.models import Contact, ContactStatus

STAGE_BATCH = 5_000
# Batches waiting for the writer: with the one being read and the one being written, three
# batches at most are in memory, however far the parsing is ahead of the server.
_QUEUED = 1
_STAGE = "contacts_import_stage"
_CONTACTS = Contact._meta.db_table
# Table and column names below are ours, never the file's: the S608 warnings are noise.
_COLUMNS = "line, raw, number, name, fields, time_zone"
_INSERT = (
    f"INSERT INTO {_CONTACTS} (campaign_id, contact_list_id, number, name, fields, "  # noqa: S608
    "status, attempts, next_attempt_at, last_disposition, time_zone) "
    "SELECT %s, %s, number, name, fields, %s, 0, NULL, '', time_zone "
    f"FROM {_STAGE} WHERE line >= %s AND line <= %s ORDER BY line "
    "ON CONFLICT (campaign_id, number) DO NOTHING"
)
# Each staged row with the first line its number appears on.
_FIRSTS = (
    f"SELECT line, raw, number, min(line) OVER (PARTITION BY number) AS first_line "  # noqa: S608
    f"FROM {_STAGE}"
)
# A number is a contact of the campaign that this import did not write.
_EXISTING = (
    f"SELECT 1 FROM {_CONTACTS} c WHERE c.campaign_id = %s "  # noqa: S608
    "AND c.number = s.number AND c.contact_list_id <> %s"
)

StagedRow = tuple[int, str, str, str, str, str]  # line, raw, number (E.164), name, fields, zone


@dataclass(frozen=True)
class Duplicate:
    line: int
    raw: str
    number: str
    first_line: int  # == line when the number is already a contact of the campaign


class Stage:
    """Use as a context manager: leaving it stops the writer thread, whatever happened."""

    def __init__(self, *, campaign_id: int, contact_list_id: int) -> None:
        self._campaign_id = campaign_id
        self._contact_list_id = contact_list_id
        self._batch: list[StagedRow] = []
        self.rows = 0
        self.imported = 0
        # False once the file is sure to be rejected: rows are still staged for the report.
        self._writing = True
        self._pg = connection.vendor == "postgresql"
        fields_type = "jsonb" if self._pg else "text"
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {_STAGE}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {_STAGE} (line integer NOT NULL, raw text NOT NULL, "
                f"number text NOT NULL, name text NOT NULL, fields {fields_type} NOT NULL, "
                "time_zone text NOT NULL)"
            )
            cursor.execute(f"CREATE INDEX {_STAGE}_line ON {_STAGE} (line)")
            if self._pg:
                # Django's foreign keys are checked at COMMIT by default: two checks a contact,
                # all at the end. Checked per statement they run in the writer, overlapped.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # Each batch with whether its contacts are to be written, read when it is taken.
        self._queue: queue.Queue[tuple[list[StagedRow], bool] | None] = queue.Queue(_QUEUED)
        self._error: BaseException | None = None
        self._abandoned = False
        self._writer: threading.Thread | None = None
        if self._pg:
            connection.ensure_connection()
            self._writer = threading.Thread(
                target=self._write_queued, args=(connection.connection,), daemon=True
            )
            self._writer.start()

    def __enter__(self) -> Stage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._abandoned = True
        self._stop_writer()

    def add(self, row: StagedRow) -> None:
        self._batch.append(row)
        if len(self._batch) >= STAGE_BATCH:
            self._send()

    def stop_writing(self) -> None:
        """The file will be rejected: stage the rest for the report, write no more contacts."""
        self._writing = False

    def finish(self) -> int:
        """Write what is left and wait for the writer; return how many contacts were written."""
        self._send()
        self._stop_writer()
        return self.imported

    def _send(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        self.rows += len(batch)
        if self._writer is None:
            with connection.cursor() as cursor:
                self._write(cursor, batch, writing=self._writing)
            return
        self._raise_writer_error()
        self._queue.put((batch, self._writing))

    def _stop_writer(self) -> None:
        if self._writer is None:
            return
        self._queue.put(None)
        self._writer.join()
        self._writer = None
        self._raise_writer_error()

    def _raise_writer_error(self) -> None:
        if self._error is not None:
            # As Django's own cursors would raise it: psycopg's errors as django.db's.
            with connection.wrap_database_errors:
                raise self._error

    def _write_queued(self, raw_connection: Any) -> None:
        try:
            with raw_connection.cursor() as cursor:
                while (item := self._queue.get()) is not None:
                    if not self._abandoned:
                        self._write(cursor, item[0], writing=item[1])
        except BaseException as exc:  # handed to the caller's thread, raised there
            self._error = exc
            while self._queue.get() is not None:
                pass

    def _write(self, cursor: Any, batch: list[StagedRow], *, writing: bool) -> None:
        if self._pg:
            # One COPY per batch, not one for the file: each stays well inside the statement
            # timeout however slowly the file is read.
            with cursor.copy(f"COPY {_STAGE} ({_COLUMNS}) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
        else:
            cursor.executemany(
                f"INSERT INTO {_STAGE} ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)",  # noqa: S608
                batch,
            )
        if not writing:
            return
        # In file order, so a number's first row is the one written.
        cursor.execute(
            _INSERT,
            [
                self._campaign_id,
                self._contact_list_id,
                ContactStatus.PENDING.value,
                batch[0][0],
                batch[-1][0],
            ],
        )
        self.imported += cursor.rowcount

    def duplicates(self, *, limit: int) -> tuple[list[Duplicate], int]:
        """The first `limit` rows, by line, whose number came earlier in the file or was already
        a contact of the campaign; and how many such rows there are in all."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT s.line, s.raw, s.number, s.first_line, count(*) OVER () "  # noqa: S608
                f"FROM ({_FIRSTS}) s WHERE s.line <> s.first_line OR EXISTS ({_EXISTING}) "
                "ORDER BY s.line LIMIT %s",
                [self._campaign_id, self._contact_list_id, limit],
            )
            rows = cursor.fetchall()
        found = [Duplicate(line, raw, number, first) for line, raw, number, first, _ in rows]
        return found, (rows[0][4] if rows else 0)

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {_STAGE}")
