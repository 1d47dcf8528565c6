"""The engine's database writer survives any failing write, says when it cannot record, and an
engine stops taking calls while it cannot (issue #10). Real PostgreSQL: the writer thread has
its own connection, so these tests commit."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from campaigns.engine_work import CampaignWork
from campaigns.models import CallAttempt, Campaign, Contact
from campaigns.services.claim_check import attempt_process
from campaigns.services.dispatch import dispatch_due
from campaigns.services.engine_take import engine_take_next
from campaigns.services.outcomes import attempt_end_unrecorded, attempt_record_event
from campaigns.services.reap import reap_stale
from compliance.models import Sender
from telephony.engine.events import CallEvent, Disposition, EventKind
from telephony.pool.event_writer import MAX_TRIES, EventWriter
from telephony.pool.host import EngineHost
from telephony.pool.models import EngineProcess
from telephony.pool.wire import LineReader, decode_status, encode_job
from tests.helpers.factories import make_engine_process, make_sender, make_started_campaign
from tests.helpers.sipp import free_udp_port
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


class Beats:
    """A heartbeat that counts itself (and touches the database, as the engine's does)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        Sender.objects.exists()
        self.count += 1


@pytest.fixture
def beats() -> Beats:
    return Beats()


@pytest.fixture
def writers(tmp_path: Path, beats: Beats) -> Iterator[Callable[..., EventWriter]]:
    made: list[EventWriter] = []

    def make(**overrides: object) -> EventWriter:
        values: dict = {
            "name": "test",
            "heartbeat": beats,
            "every_s": 0.05,
            "dead_letters": tmp_path / "dead.jsonl",
            "backoff_s": 0.02,
        }
        writer = EventWriter(**(values | overrides))
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.close(timeout=10)


def _bad_setting(**_: object) -> None:
    raise ValueError("invalid literal for int() with base 10: 'ten minutes'")


@pytest.mark.slow
def test_a_write_that_raises_value_error_does_not_stop_the_next_writes(
    writers: Callable[..., EventWriter], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = writers()
    writer.put(partial(_bad_setting, attempt_id=7))
    writer.put(partial(make_sender, dlt_entity_id="1101AFTER", name="after"))
    writer.put(partial(make_sender, dlt_entity_id="1101LATER", name="later"))

    wait_for(lambda: Sender.objects.filter(name__in=("after", "later")).count() == 2, timeout=10)
    assert writer.healthy
    assert writer.dead_lettered == 1
    (line,) = (tmp_path / "dead.jsonl").read_text().splitlines()
    dead = json.loads(line)
    assert dead["tries"] == MAX_TRIES
    assert dead["write"] == {
        "call": f"{__name__}._bad_setting",
        "args": [],
        "kwargs": {"attempt_id": 7},
    }
    assert "ValueError" in dead["error"] and "ten minutes" in dead["traceback"]
    # Every failure is logged with its traceback.
    failures = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert len(failures) == MAX_TRIES


def test_healthy_is_false_while_a_write_fails_and_true_once_it_goes_through(
    writers: Callable[..., EventWriter],
) -> None:
    writer = writers(backoff_s=0.2)  # 0.2 + 0.4 + ... : time to look while it retries
    fixed = threading.Event()

    def flaky() -> None:
        if not fixed.is_set():
            raise TypeError("a bug, until it is not")
        make_sender(name="recorded")

    assert writer.healthy
    writer.put(flaky)
    wait_for(lambda: not writer.healthy, timeout=10)
    fixed.set()
    wait_for(lambda: writer.healthy, timeout=10)
    assert Sender.objects.filter(name="recorded").exists()
    assert writer.dead_lettered == 0


@pytest.mark.slow
def test_the_heartbeat_goes_on_while_a_write_is_retried(
    writers: Callable[..., EventWriter], beats: Beats
) -> None:
    writer = writers(backoff_s=0.1)  # retried over 0.1 + 0.2 + 0.4 + 0.8 s
    wait_for(lambda: beats.count > 0, timeout=10)
    writer.put(_bad_setting)
    wait_for(lambda: not writer.healthy, timeout=10)
    during = beats.count
    wait_for(lambda: writer.dead_lettered == 1, timeout=10)
    # every_s is 0.05 s: a writer that waited without beating would show none here.
    assert beats.count - during >= 10
    # Unhealthy after the failure until a later write (here the heartbeat) goes through.
    wait_for(lambda: writer.healthy, timeout=10)


def test_a_write_the_database_refuses_is_dead_lettered_at_once(
    writers: Callable[..., EventWriter], tmp_path: Path
) -> None:
    writer = writers()
    make_sender(dlt_entity_id="1101TAKEN")
    writer.put(partial(make_sender, dlt_entity_id="1101TAKEN"))  # unique: IntegrityError
    writer.put(partial(make_sender, name="next"))
    wait_for(lambda: Sender.objects.filter(name="next").exists(), timeout=10)
    dead = json.loads((tmp_path / "dead.jsonl").read_text())
    assert dead["tries"] == 1 and "IntegrityError" in dead["error"]


def test_an_ended_event_of_a_campaign_with_an_old_bad_retry_delay_is_recorded(
    writers: Callable[..., EventWriter], caplog: pytest.LogCaptureFixture
) -> None:
    """The finding itself, at the writer: the busy result is written, retried by default."""
    campaign = make_started_campaign(contacts=1, max_attempts=3)
    # Stored before validation existed (save() would refuse it now).
    Campaign.objects.filter(id=campaign.pk).update(retry_delays={"busy": "ten minutes"})
    engine = make_engine_process()
    (attempt_id,) = dispatch_due()
    attempt_process(attempt_id=attempt_id)
    engine_take_next(engine_id=engine.pk)
    writer = writers()

    ended = CallEvent(
        attempt_id, EventKind.ENDED, timezone.now(), sip_code=486, disposition=Disposition.BUSY
    )
    writer.put(partial(attempt_record_event, event=ended))

    wait_for(lambda: CallAttempt.objects.get(id=attempt_id).status == "ended", timeout=10)
    assert writer.healthy and writer.dead_lettered == 0
    contact = Contact.objects.get(campaign=campaign)
    assert contact.status == "pending" and contact.next_attempt_at is not None
    wait = (contact.next_attempt_at - timezone.now()).total_seconds()
    assert 590 < wait <= 600  # the default busy delay
    assert any("ten minutes" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


@pytest.mark.slow
def test_a_call_whose_end_could_not_be_recorded_is_never_dialed_again(
    writers: Callable[..., EventWriter], settings: Any
) -> None:
    """The dead letter's fallback closes the attempt and its contact: when its engine later
    stops, the reaper has nothing to close as engine_lost and retry."""
    settings.ENGINE_HEARTBEAT_STALE_S = 3
    campaign = make_started_campaign(contacts=1, max_attempts=3)
    engine = make_engine_process()
    (attempt_id,) = dispatch_due()
    attempt_process(attempt_id=attempt_id)
    engine_take_next(engine_id=engine.pk)
    writer = writers()
    ended = CallEvent(
        attempt_id,
        EventKind.ENDED,
        timezone.now(),
        sip_code=200,
        disposition=Disposition.ANSWERED,
        duration_s=12.0,
        hangup_cause="callee_hangup",
    )

    writer.put(_bad_setting, on_dead_letter=partial(attempt_end_unrecorded, event=ended))
    wait_for(lambda: writer.dead_lettered == 1, timeout=10)
    wait_for(lambda: CallAttempt.objects.get(id=attempt_id).status == "ended", timeout=10)

    EngineProcess.objects.filter(id=engine.pk).update(stopped_at=timezone.now())
    assert reap_stale() == []
    attempt = CallAttempt.objects.get(id=attempt_id)
    assert (attempt.status, attempt.disposition, attempt.hangup_cause) == (
        "ended", "answered", "not_recorded"
    )  # fmt: skip
    contact = Contact.objects.get(campaign=campaign)
    assert (contact.status, contact.next_attempt_at) == ("done", None)
    assert dispatch_due() == []


# -- the engine host: no new call while its writer cannot record ------------------------------


@pytest.fixture
def fed_host() -> Iterator[tuple[EngineHost, int, LineReader]]:
    """An engine host fed over pipes, as a pool's supervisor runs it (real pjsua2, in process)."""
    jobs_r, jobs_w = os.pipe()
    status_r, status_w = os.pipe()
    host = EngineHost(
        work=CampaignWork(), host="127.0.0.1", port=free_udp_port(), feed=(jobs_r, status_w)
    )
    status = LineReader(status_r)
    try:
        yield host, jobs_w, status
    finally:
        os.close(jobs_w)
        host.close()
        for fd in (jobs_r, status_w, status_r):
            os.close(fd)


def _last_free(status: LineReader) -> int | None:
    free = None
    for line in status.read_lines():
        reported = decode_status(line)
        free = reported.free if reported.free is not None else free
    return free


@pytest.mark.slow
def test_an_engine_reports_no_free_slot_and_hands_jobs_back_while_its_writer_fails(
    fed_host: tuple[EngineHost, int, LineReader],
) -> None:
    host, jobs_w, status = fed_host
    host.report_capacity()
    assert _last_free(status) == 4

    make_started_campaign(contacts=1)
    (attempt_id,) = dispatch_due()
    attempt_process(attempt_id=attempt_id)
    host.writer.put(_bad_setting)
    wait_for(lambda: not host.writer.healthy, timeout=10)
    host.report_capacity()
    assert _last_free(status) == 0

    # A job the supervisor sent before it heard: handed back, not dialed.
    taken = engine_take_next(engine_id=host.record.pk)
    assert taken is not None
    os.write(jobs_w, encode_job(*taken))
    host.take_fed()
    assert host.engine.live_calls == 0
    wait_for(lambda: CallAttempt.objects.get(id=attempt_id).engine_id is None, timeout=10)

    # Once the bad write is set aside and a later one goes through, it takes calls again.
    wait_for(lambda: host.writer.healthy, timeout=10)
    host.report_capacity()
    assert _last_free(status) == 4
    assert EngineProcess.objects.get(id=host.record.pk).heartbeat_at is not None
