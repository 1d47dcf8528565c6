"""manage.py dial against SIPp: every disposition, its SIP code and a measured PDD."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import redis

from campaigns.models import CallAttempt
from compliance.models import AuditEntry, Suppression
from compliance.registry import registry_replace
from tests.helpers.processes import dial, dial_json
from tests.helpers.sipp import SippUAS, free_udp_port, write_dtmf_pcap

pytestmark = pytest.mark.slow

REJECTIONS = [
    (486, "Busy Here", "busy"),
    (600, "Busy Everywhere", "busy"),
    (603, "Decline", "rejected"),
    (404, "Not Found", "invalid_number"),
    (484, "Address Incomplete", "invalid_number"),
    (480, "Temporarily Unavailable", "no_answer"),
    (408, "Request Timeout", "no_answer"),
    (503, "Service Unavailable", "failed"),
    (500, "Server Internal Error", "failed"),
]


@pytest.mark.parametrize(("code", "reason", "disposition"), REJECTIONS)
def test_final_response_maps_to_disposition(
    subprocess_env: dict[str, str], tmp_path: Path, code: int, reason: str, disposition: str
) -> None:
    with SippUAS(
        "uas_reject.xml", keys={"code": str(code), "reason": reason}, workdir=tmp_path
    ) as uas:
        result = dial_json(subprocess_env, "+919876543210", uas.uri)
        assert len(uas.invites()) == 1
    assert result["disposition"] == disposition
    assert result["sip_code"] == code
    assert result["pdd_ms"] is not None and 0 <= result["pdd_ms"] < 2000  # 180 came first
    assert result["answered_at"] is None


def test_answered_call_records_pdd_answer_and_duration(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    with SippUAS("uas_answer.xml", workdir=tmp_path) as uas:
        result = dial_json(subprocess_env, "9876543210", uas.uri, "--max-seconds", "2")
        invites = uas.invites()
    assert result["disposition"] == "answered"
    assert result["sip_code"] == 200
    assert result["number"] == "+919876543210"
    assert result["pdd_ms"] is not None
    assert result["answered_at"] and result["ended_at"]
    assert 1.5 <= result["duration_s"] <= 4
    assert invites == ["sip:+919876543210@127.0.0.1:" + uas.uri.rsplit(":", 1)[1]]
    attempt = CallAttempt.objects.get(id=result["attempt_id"])
    assert attempt.status == "ended" and attempt.cli == "+911600123456"
    kinds = list(AuditEntry.objects.filter(attempt_id=attempt.pk).values_list("kind", flat=True))
    assert kinds == ["decision", "outcome"]


def test_an_answered_call_stores_its_media_quality(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    with SippUAS("uas_answer.xml", workdir=tmp_path) as uas:
        result = dial_json(subprocess_env, "9876543212", uas.uri, "--max-seconds", "3")
    assert result["disposition"] == "answered"
    # SIPp streams clean A-law on loopback: no loss, tiny jitter, a MOS near G.711's ceiling.
    assert result["rx_loss_pct"] is not None and result["rx_loss_pct"] < 1
    assert result["jitter_ms"] is not None and result["jitter_ms"] < 20
    assert result["mos"] is not None and 4.0 < result["mos"] <= 4.5


def test_the_opt_out_key_suppresses_the_number_for_the_sender(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    write_dtmf_pcap(tmp_path / "dtmf_9.pcap")
    with SippUAS("uas_dtmf.xml", workdir=tmp_path) as uas:  # presses 9 (RFC 4733) after answer
        result = dial_json(subprocess_env, "9876543213", uas.uri, "--max-seconds", "3",
                           "--opt-out-digit", "9")  # fmt: skip
    assert result["disposition"] == "answered"
    suppressed = Suppression.objects.get(number="+919876543213")
    assert suppressed.sender is not None and suppressed.sender.dlt_entity_id == "TEST-SENDER"
    entry = AuditEntry.objects.get(attempt_id=result["attempt_id"], kind="opt_out")
    assert entry.detail["digit"] == "9" and entry.number == "+919876543213"
    # The next check for this sender refuses the number (a promotional call, where suppression
    # applies; a transactional one is exempt by policy).
    blocked = dial(subprocess_env, "9876543213", "--trunk", uas.uri, "--cli", "+911600123456",
                   "--purpose", "promotional", "--json")  # fmt: skip
    assert blocked.returncode == 0, blocked.stderr[-2000:]
    assert "suppressed" in json.loads(blocked.stdout.strip().splitlines()[-1])["reasons"]


def test_a_key_that_is_not_the_opt_out_key_suppresses_nothing(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    write_dtmf_pcap(tmp_path / "dtmf_9.pcap")
    with SippUAS("uas_dtmf.xml", workdir=tmp_path) as uas:
        result = dial_json(subprocess_env, "9876543214", uas.uri, "--max-seconds", "2",
                           "--opt-out-digit", "#")  # fmt: skip
    assert result["disposition"] == "answered"
    assert not Suppression.objects.filter(number="+919876543214").exists()
    assert not AuditEntry.objects.filter(kind="opt_out").exists()


def test_early_media_then_answer_is_answered(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    with SippUAS("uas_early_media.xml", workdir=tmp_path) as uas:
        result = dial_json(subprocess_env, "+919876543211", uas.uri, "--max-seconds", "1")
    assert result["disposition"] == "answered"
    assert result["sip_code"] == 200
    assert result["pdd_ms"] is not None  # measured to the 183


def test_ring_timeout_cancels_and_is_no_answer(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    with SippUAS("uas_no_answer.xml", workdir=tmp_path) as uas:
        result = dial_json(subprocess_env, "+919876543212", uas.uri, "--ring-timeout", "2")
        cancels = uas.cancels()
    assert result["disposition"] == "no_answer"
    assert result["sip_code"] == 487
    assert result["hangup_cause"] == "ring_timeout"
    assert cancels == 1
    assert (
        1.9
        <= (
            dt.datetime.fromisoformat(result["ended_at"])
            - dt.datetime.fromisoformat(result["invite_at"])
        ).total_seconds()
        < 4
    )


def test_nothing_listening_is_failed(subprocess_env: dict[str, str]) -> None:
    result = dial_json(
        subprocess_env, "+919876543213", f"sip:127.0.0.1:{free_udp_port()}", "--ring-timeout", "2"
    )
    assert result["disposition"] == "failed"


def test_promotional_call_to_fully_blocked_number_is_blocked_and_not_dialed(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    registry_replace(rows=[("+919876500000", "0")], as_of=dt.datetime.now(dt.UTC))
    with SippUAS("uas_answer.xml", workdir=tmp_path) as uas:
        done = dial(
            subprocess_env,
            "+919876500000",
            "--trunk",
            uas.uri,
            "--cli",
            "+911401234567",
            "--purpose",
            "promotional",
            "--category",
            "3",
            "--json",
        )
        invites = uas.invites()
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["disposition"] == "blocked"
    assert "dnd_fully_blocked" in result["reasons"]
    assert result["sip_code"] is None and result["pdd_ms"] is None
    assert invites == []
    decision = AuditEntry.objects.get(attempt_id=result["attempt_id"], kind="decision")
    assert decision.allowed is False and "dnd_fully_blocked" in decision.reasons


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["+919876543210", "--trunk", "not-a-uri", "--cli", "+911401234567"], "SIP URI"),
        (["+919876543210", "--trunk", "sip:127.0.0.1:5060", "--cli", "abc"], "not a number"),
        (
            ["+919876543210", "--trunk", "sip:127.0.0.1:5060", "--cli", "1", "--purpose", "x"],
            "invalid choice",
        ),
        (["+919876543210", "--cli", "+911401234567"], "--trunk"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    subprocess_env: dict[str, str], args: list[str], message: str
) -> None:
    done = dial(subprocess_env, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_503_from_the_trunk_holds_it_back(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    if not subprocess_env.get("REDIS_URL"):
        pytest.skip("pacing needs REDIS_URL (make test sets it)")
    client = redis.Redis.from_url(subprocess_env["REDIS_URL"])
    for key in client.scan_iter("pace:*"):  # nothing left from an earlier run's trunk ids
        client.delete(key)
    with SippUAS(
        "uas_reject.xml", keys={"code": "503", "reason": "Service Unavailable"}, workdir=tmp_path
    ) as uas:
        result = dial_json(subprocess_env, "+919876543216", uas.uri)
    assert result["disposition"] == "failed" and result["sip_code"] == 503
    trunk_id = CallAttempt.objects.get(id=result["attempt_id"]).campaign.trunk_id
    # One strike: the trunk was held for a second (long gone by now) and the next 503 doubles it.
    assert client.get(f"pace:strikes:trunk:{trunk_id}") == b"1"


@pytest.mark.parametrize(
    ("password", "disposition", "code"), [("s3cret", "answered", 200), ("wrong", "failed", 403)]
)
def test_digest_authentication_against_the_trunk(
    subprocess_env: dict[str, str], tmp_path: Path, password: str, disposition: str, code: int
) -> None:
    with SippUAS(
        "uas_digest.xml", keys={"user": "dialer", "password": "s3cret"}, workdir=tmp_path
    ) as uas:
        env_name = f"TRUNK_TEST_SIP_127_0_0_1_{uas.port}_PASSWORD"
        env = dict(subprocess_env, **{env_name: password})
        result = dial_json(
            env, "+919876543217", uas.uri, "--auth-user", "dialer", "--max-seconds", "1"
        )
    assert (result["disposition"], result["sip_code"]) == (disposition, code)
