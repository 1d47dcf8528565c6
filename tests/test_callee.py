"""The demo callee: its number table and schedule as plain code, then the real process over SIP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from telephony.callee import (
    DEFAULT_TALK_MS,
    NO_ANSWER_GIVE_UP_MS,
    CalleeBehaviour,
    CalleeSchedule,
    Step,
    callee_behaviour,
    request_uri_user,
)
from tests.sipp_harness import HOST, UacResult, free_udp_port, process_alive, run_uac

REPO = Path(__file__).resolve().parent.parent

# --- the table --------------------------------------------------------------------------------

TABLE = {
    "0": ("answer", 200, 800),
    "1": ("answer", 200, 800),
    "2": ("answer", 200, 800),
    "3": ("answer", 200, 800),
    "4": ("early_media_answer", 200, 1500),
    "5": ("busy", 486, 0),
    "6": ("no_answer", 487, None),
    "7": ("decline", 603, 2000),
    "8": ("not_found", 404, 0),
    "9": ("unavailable", 480, 0),
}


@pytest.mark.parametrize("digit", sorted(TABLE))
def test_last_digit_picks_the_behaviour(digit: str) -> None:
    action, code, ring_ms = TABLE[digit]
    b = callee_behaviour(f"+9198765432{digit}")
    assert (b.action, b.sip_code, b.ring_ms) == (action, code, ring_ms)
    assert b.talk_ms == (DEFAULT_TALK_MS if code == 200 else 0)


def test_only_digits_count_and_the_last_one_decides() -> None:
    assert callee_behaviour("+91 (98765) 4321-5;x").action == "busy"
    assert callee_behaviour("agent7b").action == "decline"


def test_a_user_without_digits_is_answered() -> None:
    assert callee_behaviour("callee") == CalleeBehaviour("answer", 200, 800, DEFAULT_TALK_MS)


def test_talk_time_applies_to_answered_calls_only() -> None:
    assert callee_behaviour("100", talk_ms=1234).talk_ms == 1234
    assert callee_behaviour("104", talk_ms=1234).talk_ms == 1234
    assert callee_behaviour("105", talk_ms=1234).talk_ms == 0


@pytest.mark.parametrize(
    ("invite", "user"),
    [
        ("INVITE sip:+919876543210@127.0.0.1:5070 SIP/2.0\r\nVia: x\r\n\r\n", "+919876543210"),
        ("INVITE sip:9990;phone-context=x@127.0.0.1 SIP/2.0\r\n", "9990"),
        ("INVITE sips:5555@example.com;transport=tls SIP/2.0\n", "5555"),
        ("INVITE tel:+15551234567;npdi SIP/2.0\r\n", "+15551234567"),
        ("INVITE sip:127.0.0.1:5070 SIP/2.0\r\n", ""),
        ("garbage", ""),
    ],
)
def test_request_uri_user(invite: str, user: str) -> None:
    assert request_uri_user(invite) == user


# --- the schedule, on a fake clock --------------------------------------------------------------


def test_answered_call_rings_then_answers_then_hangs_up_after_talk_time() -> None:
    s = CalleeSchedule(talk_ms=5000)
    assert s.admit(1, "9990", now=100.0) == 180
    assert s.due(100.79) == []
    assert s.due(100.8) == [Step(1, "answer", 200)]
    assert s.due(105.79) == []
    assert s.due(105.8) == [Step(1, "hangup", 0)]
    assert s.due(1000.0) == []


def test_early_media_call_sends_183_then_answers() -> None:
    s = CalleeSchedule()
    assert s.admit(1, "9994", now=0.0) == 183
    assert s.due(1.5) == [Step(1, "answer", 200)]


@pytest.mark.parametrize(("user", "code"), [("9995", 486), ("9998", 404), ("9999", 480)])
def test_immediate_refusals_send_no_ringing_and_are_due_at_once(user: str, code: int) -> None:
    s = CalleeSchedule()
    assert s.admit(1, user, now=7.0) is None
    assert s.due(7.0) == [Step(1, "reject", code)]


def test_decline_rings_for_two_seconds_first() -> None:
    s = CalleeSchedule()
    assert s.admit(1, "9997", now=0.0) == 180
    assert s.due(1.99) == []
    assert s.due(2.0) == [Step(1, "reject", 603)]


def test_unanswered_call_rings_until_cancel_or_gives_up_much_later() -> None:
    s = CalleeSchedule()
    assert s.admit(1, "9996", now=0.0) == 180
    assert s.due(60.0) == []
    assert s.due(NO_ANSWER_GIVE_UP_MS / 1000) == [Step(1, "reject", 480)]


def test_a_call_that_ended_has_no_pending_step() -> None:
    s = CalleeSchedule(talk_ms=1000)
    s.admit(1, "9990", now=0.0)
    assert s.due(1.0) == [Step(1, "answer", 200)]
    s.ended(1)  # the caller hung up first
    assert s.due(10.0) == []
    assert s.live_calls == 0


def test_a_fifth_concurrent_call_gets_486_and_a_freed_slot_is_reused() -> None:
    s = CalleeSchedule()
    assert [s.admit(k, "9996", now=0.0) for k in range(4)] == [180] * 4
    assert s.admit(4, "9990", now=0.0) == 486
    assert s.due(10.0) == []  # the refused call has nothing scheduled
    s.ended(0)
    assert s.admit(5, "9990", now=0.0) == 180


def test_steps_come_out_in_time_order() -> None:
    s = CalleeSchedule()
    s.admit(1, "9997", now=0.0)  # 603 at 2.0
    s.admit(2, "9990", now=0.5)  # answer at 1.3
    s.admit(3, "9995", now=1.0)  # 486 at 1.0
    assert [step.key for step in s.due(5.0)] == [3, 2, 1]


# --- the real process over SIP ------------------------------------------------------------------


class CalleeProcess:
    """`manage.py run_callee` on a free port, stopped (SIGTERM, then SIGKILL) when done."""

    def __init__(self, workdir: Path, *extra: str) -> None:
        self.port = free_udp_port()
        self.workdir = workdir
        self.log = workdir / f"callee_{self.port}.log"
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = "dialer.settings"
        env["DIALER_VAR_DIR"] = str(workdir / "var")
        cmd = [sys.executable, "manage.py", "run_callee", "--port", str(self.port), *extra]
        # A file rather than a pipe: nobody reads the output while calls run.
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        self._wait_ready()

    @property
    def target(self) -> str:
        return f"{HOST}:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if f"callee listening on sip:{HOST}:{self.port}" in self.output():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"run_callee exited {self.proc.returncode}: {self.output()}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"run_callee not ready: {self.output()}")

    def stop(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode


@pytest.fixture(scope="module")
def callee(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CalleeProcess]:
    proc = CalleeProcess(tmp_path_factory.mktemp("callee"))
    try:
        yield proc
    finally:
        assert proc.stop() == 0, proc.output()


def _call(
    callee: CalleeProcess,
    scenario: str,
    number: str,
    tmp_path: Path,
    keys: dict[str, str] | None = None,
) -> UacResult:
    return run_uac(scenario, callee.target, service=number, workdir=tmp_path, keys=keys)


def test_number_ending_0_rings_then_answers_with_a_tone(
    callee: CalleeProcess, tmp_path: Path
) -> None:
    result = _call(callee, "uac_answer.xml", "919876543210", tmp_path)
    assert result.returncode == 0, result.output + callee.output()
    assert result.rtp_packets > 30  # 1.5 s held: about 75 tone frames


def test_number_ending_4_sends_early_media_then_answers(
    callee: CalleeProcess, tmp_path: Path
) -> None:
    result = _call(callee, "uac_early_media.xml", "919876543214", tmp_path)
    assert result.returncode == 0, result.output + callee.output()
    assert result.rtp_packets > 80  # 1.5 s of early media and 1.5 s answered


REFUSALS = [("5", "486"), ("7", "603"), ("8", "404"), ("9", "480")]


@pytest.mark.parametrize(("digit", "code"), REFUSALS)
def test_refusing_numbers_get_their_final_response(
    callee: CalleeProcess, tmp_path: Path, digit: str, code: str
) -> None:
    result = _call(callee, "uac_reject.xml", f"91987654321{digit}", tmp_path, keys={"code": code})
    assert result.returncode == 0, result.output + callee.output()


def test_number_ending_6_rings_until_cancel_then_487(callee: CalleeProcess, tmp_path: Path) -> None:
    result = _call(callee, "uac_cancel.xml", "919876543216", tmp_path)
    assert result.returncode == 0, result.output + callee.output()


def test_callee_hangs_up_after_the_talk_time(tmp_path: Path) -> None:
    proc = CalleeProcess(tmp_path, "--talk-seconds", "1")
    try:
        started = time.monotonic()
        result = _call(proc, "uac_answer_wait_bye.xml", "5550", tmp_path)
        assert result.returncode == 0, result.output + proc.output()
        assert time.monotonic() - started < 6  # 0.8 s ringing + 1 s talk, not the default 30 s
    finally:
        assert proc.stop() == 0, proc.output()


def test_sigterm_hangs_up_live_calls_and_exits_0(tmp_path: Path) -> None:
    proc = CalleeProcess(tmp_path)
    results: list[UacResult] = []
    uac = threading.Thread(
        target=lambda: results.append(_call(proc, "uac_answer_wait_bye.xml", "5550", tmp_path))
    )
    uac.start()
    try:
        time.sleep(2.0)  # rung and answered: the call is up, 28 s of talk time left
        assert proc.stop() == 0, proc.output()
        assert "callee stopped" in proc.output()
    finally:
        uac.join(timeout=30)
    assert not process_alive(proc.proc.pid)
    assert results and results[0].returncode == 0, results[0].output if results else "no result"


def test_a_fifth_concurrent_call_is_refused_busy(callee: CalleeProcess, tmp_path: Path) -> None:
    ringing: list[UacResult] = []
    uacs = [
        threading.Thread(
            target=lambda n=n: ringing.append(
                _call(callee, "uac_cancel.xml", f"55{n}6", tmp_path / f"uac{n}")
            )
        )
        for n in range(4)
    ]
    for uac in uacs:
        uac.start()
    try:
        time.sleep(0.4)  # all four ringing; each cancels 1 s after its 180
        fifth = _call(callee, "uac_reject.xml", "5550", tmp_path, keys={"code": "486"})
    finally:
        for uac in uacs:
            uac.join(timeout=30)
    assert fifth.returncode == 0, fifth.output + callee.output()
    assert [r.returncode for r in ringing] == [0, 0, 0, 0], callee.output()
