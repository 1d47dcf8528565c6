"""What the pool's dispatcher and its engine processes say to each other over their pipes.

One JSON object per line. Dispatcher -> engine: a taken attempt to dial, with the pacing scopes
its lease holds. Engine -> dispatcher: its database id once, then its free call slots and how
many jobs it has read, whenever either changes. Pure functions: no pjsua2, no Django.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

from telephony.engine.events import DialJob


@dataclass(frozen=True)
class Status:
    engine_id: int | None = None
    free: int | None = None
    jobs_read: int | None = None


def encode_job(job: DialJob, scopes: list[str]) -> bytes:
    return (json.dumps({"job": dataclasses.asdict(job), "scopes": scopes}) + "\n").encode()


def decode_job(line: bytes) -> tuple[DialJob, list[str]]:
    """Raises ValueError on anything that is not a job line."""
    try:
        data = json.loads(line)
        job = DialJob(**data["job"])
        scopes = [str(s) for s in data["scopes"]]
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        # Not the line itself: a job line carries the trunk's password.
        raise ValueError(f"not a job line ({len(line)} bytes): {type(exc).__name__}") from exc
    return job, scopes


def encode_status(status: Status) -> bytes:
    fields = {k: v for k, v in dataclasses.asdict(status).items() if v is not None}
    return (json.dumps(fields) + "\n").encode()


def decode_status(line: bytes) -> Status:
    try:
        data = json.loads(line)
        return Status(**{k: int(v) for k, v in data.items()})
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not a status line: {line[:200]!r}") from exc


class LineReader:
    """Complete lines from a non-blocking pipe; `closed` once the writer has gone."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self._buf = b""
        self.closed = False

    def read_lines(self) -> list[bytes]:
        while not self.closed:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                self.closed = True
                break
            self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        return [line for line in lines if line.strip()]
