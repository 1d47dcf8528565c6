"""An answered call is streamed to the agent over a WebSocket, and the agent hanging up ends it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from campaigns.models import CallAttempt
from dialer.processes import ManagedProcess, free_port, manage_cmd
from tests.helpers.bridge import FakeAgent, LoopThread
from tests.helpers.processes import dial_json
from tests.helpers.sipp import SippUAS

pytestmark = pytest.mark.slow


def test_answered_call_streams_to_the_agent_until_it_closes(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    agent = ManagedProcess(
        "agent", manage_cmd("run_agent", "--port", str(port), "--talk-seconds", "2"),
        env=subprocess_env, log_dir=tmp_path,
    ).start(ready="agent listening", timeout=30)  # fmt: skip
    try:
        with SippUAS("uas_answer.xml", workdir=tmp_path) as uas:
            agent_url = f"ws://127.0.0.1:{port}"
            result = dial_json(
                subprocess_env,
                "+919876543214",
                uas.uri,
                "--agent",
                agent_url,
                "--max-seconds",
                "20",
            )
        agent.wait_for("agent_stream_end", timeout=10)
    finally:
        agent.stop()
    assert result["disposition"] == "answered"
    assert result["hangup_cause"] == "agent:agent_closed"
    assert 1.8 <= result["duration_s"] < 5  # the agent's 2 s, not --max-seconds

    line = next(ln for ln in agent.log_text().splitlines() if '"agent_stream_end"' in ln)
    stream = json.loads(line[line.index("{") :])
    assert stream["callSid"].endswith(str(result["attempt_id"]))
    assert stream["customParameters"]["number"] == "+919876543214"
    assert stream["customParameters"]["attemptId"] == str(result["attempt_id"])
    assert stream["frames_heard"] >= 75  # ~50 frames a second of callee audio for ~2 s
    assert stream["marks_received"] == 1  # the greeting's mark came back after it played

    attempt = CallAttempt.objects.get(id=result["attempt_id"])
    assert attempt.agent_frames_out >= 75
    assert attempt.agent_frames_in >= 40  # the 1 s greeting was played into the call


def test_a_silent_agent_is_hung_up_after_the_idle_timeout_with_a_cause_of_its_own(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    # A live WebSocket server that answers pings (websockets does) but never says anything: the
    # callee would hear silence until --max-seconds without the idle timeout.
    loop_thread = LoopThread()
    agent = FakeAgent(loop_thread)
    try:
        with SippUAS("uas_answer.xml", workdir=tmp_path) as uas:
            env = {**subprocess_env, "AGENT_IDLE_TIMEOUT_S": "1", "AGENT_PING_INTERVAL_S": "1"}
            result = dial_json(
                env, "+919876543215", uas.uri, "--agent", agent.url, "--max-seconds", "8"
            )
        assert agent.wait_for("stop")
    finally:
        agent.stop()
        loop_thread.stop()
    assert result["disposition"] == "answered"
    assert result["hangup_cause"] == "agent_idle"  # no "agent:" prefix: the dialer ended it
    assert 0.9 <= result["duration_s"] < 3
    assert CallAttempt.objects.get(id=result["attempt_id"]).hangup_cause == "agent_idle"
