"""A real call through the whole bridge: SIPp answers, presses the opt-out key and plays audio;
the agent is a real WebSocket server that echoes the callee's audio back, places marks, barges in
with `clear`, and hangs up through the Twilio-style REST endpoint."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from campaigns.models import CallAttempt
from compliance.models import AuditEntry, Suppression
from telephony.bridge.audio import ulaw_to_pcm16
from tests.helpers.bridge import LoopThread
from tests.helpers.processes import CalleeProcess, dial_json
from tests.helpers.sipp import SippUAS, write_dtmf_pcap

pytestmark = pytest.mark.slow

# Echo starts at once; the first mark goes after 10 callee frames, the barge-in after 60, the
# REST hang-up after 120 (~2.4 s of callee audio).
FIRST_MARK_AT, BARGE_IN_AT, HANG_UP_AT = 10, 60, 120


class _AgentServer:
    """A WebSocket server on its own asyncio loop thread, as an agent's process would be."""

    def __init__(self) -> None:
        self._lt = LoopThread()
        self.loop = self._lt.loop
        self.server: Server = self._lt.run(self._serve())
        self.url = f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self) -> Server:
        return await serve(self._handle, "127.0.0.1", 0)

    async def _handle(self, ws: ServerConnection) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            await self.server.wait_closed()

        self._lt.run(close())
        self._lt.stop()


class EchoAgent(_AgentServer):
    """Twilio-side agent; records what it saw with monotonic times."""

    def __init__(self) -> None:
        self.start: dict[str, Any] = {}
        self.frames_in = 0
        self.loud_frames_in = 0
        self.dtmf: list[str] = []
        self.marks: dict[str, float] = {}  # name -> when it came back
        self.clear_sent_at = 0.0
        self.hangup_status: int | None = None
        self.hangup_body: dict[str, Any] = {}
        self.closed = threading.Event()
        super().__init__()

    async def _handle(self, ws: ServerConnection) -> None:
        sid = ""
        try:
            async for raw in ws:
                msg = json.loads(raw)
                event = msg["event"]
                if event == "start":
                    self.start = msg["start"]
                    sid = msg["streamSid"]
                elif event == "media":
                    await self._on_media(ws, sid, msg["media"]["payload"])
                elif event == "mark":
                    self.marks[msg["mark"]["name"]] = time.monotonic()
                elif event == "dtmf":
                    self.dtmf.append(msg["dtmf"]["digit"])
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()

    async def _on_media(self, ws: ServerConnection, sid: str, payload: str) -> None:
        self.frames_in += 1
        pcm = ulaw_to_pcm16(base64.b64decode(payload))
        if max(abs(int.from_bytes(pcm[i : i + 2], "little", signed=True))
               for i in range(0, len(pcm), 2)) > 500:  # fmt: skip
            self.loud_frames_in += 1
        await ws.send(json.dumps({"event": "media", "streamSid": sid,
                                  "media": {"payload": payload}}))  # echo  # fmt: skip
        if self.frames_in == FIRST_MARK_AT:
            await ws.send(json.dumps({"event": "mark", "streamSid": sid,
                                      "mark": {"name": "after-echo"}}))  # fmt: skip
        elif self.frames_in == BARGE_IN_AT:
            # A 3 s utterance and its mark, then the caller talks over it: clear.
            tone = base64.b64encode(bytes([0x10, 0x90] * 12000)).decode()
            await ws.send(json.dumps({"event": "media", "streamSid": sid,
                                      "media": {"payload": tone}}))  # fmt: skip
            await ws.send(json.dumps({"event": "mark", "streamSid": sid,
                                      "mark": {"name": "utterance"}}))  # fmt: skip
            self.clear_sent_at = time.monotonic()
            await ws.send(json.dumps({"event": "clear", "streamSid": sid}))
        elif self.frames_in == HANG_UP_AT:
            await asyncio.get_running_loop().run_in_executor(None, self._rest_hangup)

    def _rest_hangup(self) -> None:
        params = self.start["customParameters"]
        account, call = self.start["accountSid"], self.start["callSid"]
        url = f"{params['apiBaseUrl']}/2010-04-01/Accounts/{account}/Calls/{call}.json"
        body = urllib.parse.urlencode({"Status": "completed"}).encode()
        request = urllib.request.Request(url, data=body, method="POST")
        token = base64.b64encode(f"{account}:{params['authToken']}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=5) as response:
            self.hangup_status = response.status
            self.hangup_body = json.loads(response.read())


@pytest.fixture
def agent() -> Iterator[EchoAgent]:
    echo = EchoAgent()
    yield echo
    echo.stop()


@pytest.mark.parametrize("media", ["relay", "tap"])
def test_a_bridged_call_echoes_marks_barges_in_opts_out_and_hangs_up_by_rest(
    subprocess_env: dict[str, str], tmp_path: Path, agent: EchoAgent, media: str
) -> None:
    # relay: the bridge carries the RTP itself (the default); tap: pjsua's media and a port.
    subprocess_env["ENGINE_BRIDGE_MEDIA"] = media
    write_dtmf_pcap(tmp_path / "dtmf_9.pcap")
    with SippUAS("uas_dtmf.xml", workdir=tmp_path) as uas:
        result = dial_json(subprocess_env, "9876543220", uas.uri, "--agent", agent.url,
                           "--max-seconds", "15", "--opt-out-digit", "9")  # fmt: skip
    assert agent.closed.wait(5)

    # Call control: the REST call (per-stream credentials from `start`) ended the call.
    assert agent.hangup_status == 200 and agent.hangup_body["status"] == "completed"
    assert result["disposition"] == "answered"
    assert result["hangup_cause"] == "agent:agent_rest"
    assert result["duration_s"] < 10  # long before --max-seconds

    # Callee -> agent: SIPp's recorded speech arrived as Twilio media frames.
    assert agent.frames_in >= HANG_UP_AT and agent.loud_frames_in >= 20
    assert agent.start["customParameters"]["number"] == "+919876543220"
    # Agent -> callee: the echo was played into the call, and its mark came back once played.
    attempt = CallAttempt.objects.get(id=result["attempt_id"])
    assert attempt.agent_frames_in >= 40
    assert "after-echo" in agent.marks
    # Barge-in: clear dropped the 3 s utterance at once and its pending mark came back with it.
    assert agent.marks["utterance"] - agent.clear_sent_at < 0.5
    assert attempt.agent_frames_in < HANG_UP_AT + 100  # not the 150 frames of the utterance

    # DTMF went to the agent, and the opt-out key suppressed the number for the sender.
    assert agent.dtmf == ["9"]
    assert Suppression.objects.filter(number="+919876543220", sender__isnull=False).exists()
    assert AuditEntry.objects.filter(attempt_id=attempt.pk, kind="opt_out").exists()
    assert attempt.mos is not None


class RecordingAgent(_AgentServer):
    """Records every message; says nothing back."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        super().__init__()

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            async for raw in ws:
                self.messages.append(json.loads(raw))
        except ConnectionClosed:
            pass


def test_an_exotel_campaign_streams_snake_case_pcm(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    agent = RecordingAgent()
    try:
        with SippUAS("uas_answer.xml", workdir=tmp_path) as uas:  # an A-law trunk
            result = dial_json(subprocess_env, "9876543221", uas.uri, "--agent", agent.url,
                               "--max-seconds", "2", "--stream-format", "exotel")  # fmt: skip
    finally:
        agent.stop()
    assert result["disposition"] == "answered"
    events = [m["event"] for m in agent.messages]
    assert events[:2] == ["connected", "start"] and events[-1] == "stop"
    start = agent.messages[1]
    assert start["start"]["call_sid"] and start["start"]["stream_sid"] == start["stream_sid"]
    assert start["start"]["custom_parameters"]["number"] == "+919876543221"
    assert start["start"]["media_format"]["encoding"] == "audio/x-raw"
    media = [m for m in agent.messages if m["event"] == "media"]
    assert len(media) >= 60  # ~50 frames a second for ~2 s
    assert {len(base64.b64decode(m["media"]["payload"])) for m in media} == {320}  # 20 ms PCM16


def test_sip_info_dtmf_on_a_mu_law_trunk_reaches_the_agent_and_opts_out(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    # The built-in pjsua2 callee negotiates PCMU with the engine and presses 9 by SIP INFO
    # (application/dtmf-relay) 0.6 s after answering.
    callee = CalleeProcess(tmp_path, "--dtmf", "600:9:info", "--talk-seconds", "3")
    agent = RecordingAgent()
    try:
        result = dial_json(subprocess_env, "9876543230", f"sip:{callee.target}", "--agent",
                           agent.url, "--max-seconds", "5", "--opt-out-digit", "9")  # fmt: skip
    finally:
        agent.stop()
        callee.stop()
    assert result["disposition"] == "answered"
    dtmf = [m["dtmf"]["digit"] for m in agent.messages if m["event"] == "dtmf"]
    assert dtmf == ["9"]
    assert agent.messages[1]["start"]["mediaFormat"]["encoding"] == "audio/x-mulaw"
    assert Suppression.objects.filter(number="+919876543230", sender__isnull=False).exists()
    assert (
        AuditEntry.objects.get(attempt_id=result["attempt_id"], kind="opt_out").detail["digit"]
        == "9"
    )
