"""Anchoring the audit chain outside the database.

The chain is keyed, so editing the log needs AUDIT_KEY as well as the database; anchors close the
rest of the gap: someone who holds both could still rebuild the chain after the entry they
changed. An anchor is one line appended to a file kept elsewhere (another host, append-only
storage, a ticket): `<UTC time> <entry id> <entry_hash>`. A later verification checks every
anchored entry still has the anchored hash; a rebuilt chain cannot match them.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from compliance.models import AuditEntry
from compliance.verify import VerifyReport, audit_verify


class AnchorError(ValueError):
    pass


@dataclass(frozen=True)
class Anchor:
    line: int
    at: str
    entry_id: int
    entry_hash: str


@dataclass(frozen=True)
class AnchorCheck:
    checked: int
    last_good: Anchor | None
    first_bad: Anchor | None
    first_suspect_id: int | None  # the first entry after the last good anchor
    problem: str | None

    @property
    def intact(self) -> bool:
        return self.first_bad is None


def anchors_read(path: Path) -> list[Anchor]:
    """The anchors in a file, in file order; a malformed line is an AnchorError naming it."""
    return _parse(_read(path), path)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise AnchorError(f"cannot read anchors from {path}: {exc}") from exc


def _parse(text: str, path: Path) -> list[Anchor]:
    anchors: list[Anchor] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        parts = raw.split()
        if not parts or raw.startswith("#"):
            continue
        if (
            len(parts) != 3
            or not parts[1].isdigit()
            or len(parts[2]) != 64
            or any(c not in "0123456789abcdef" for c in parts[2])
        ):
            raise AnchorError(f"{path} line {number}: not '<time> <entry id> <hash>'")
        anchors.append(Anchor(number, parts[0], int(parts[1]), parts[2]))
    return anchors


def anchors_check(*, anchors: list[Anchor]) -> AnchorCheck:
    """Compare each anchored entry's stored hash with its anchor, in entry order."""
    stored = dict(
        AuditEntry.objects.filter(id__in={a.entry_id for a in anchors}).values_list(
            "id", "entry_hash"
        )
    )
    last_good: Anchor | None = None
    for anchor in sorted(anchors, key=lambda a: (a.entry_id, a.line)):
        found = stored.get(anchor.entry_id)
        if found == anchor.entry_hash:
            last_good = anchor
            continue
        after = last_good.entry_id if last_good else 0
        suspect = (
            AuditEntry.objects.filter(id__gt=after).order_by("id").values_list("id", flat=True)
        ).first()
        what = "is missing" if found is None else "differs from its anchor"
        since = f"entry {last_good.entry_id}" if last_good else "the start of the log"
        return AnchorCheck(
            checked=len(anchors),
            last_good=last_good,
            first_bad=anchor,
            first_suspect_id=suspect,
            problem=(
                f"entry {anchor.entry_id} {what} (anchored at {anchor.at}, line {anchor.line}):"
                f" the log was rewritten after {since}, at or before entry {anchor.entry_id}"
            ),
        )
    return AnchorCheck(len(anchors), last_good, None, None, None)


def anchor_append(*, path: Path, report: VerifyReport | None = None) -> Anchor | None:
    """Verify the chain (and the anchors already in the file), then append its head. None
    when the log is empty (nothing to anchor)."""
    report = report or audit_verify()
    if not report.intact:
        raise AnchorError(f"not anchored: the chain is broken at entry {report.first_broken_id}")
    text = _read(path)
    check = anchors_check(anchors=_parse(text, path))
    if not check.intact:
        raise AnchorError(f"not anchored: {check.problem}")
    if report.head_id is None:
        return None
    at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # A file edited by hand may lack its last newline: never run on into its last line.
    start = "" if not text or text.endswith("\n") else "\n"
    line = f"{start}{at} {report.head_id} {report.head_hash}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_APPEND: concurrent anchorers never interleave within a line; fsync: it is evidence.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return Anchor((text + line).count("\n"), at, report.head_id, report.head_hash)
