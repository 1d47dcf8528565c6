"""An AudioMediaPort that carries a call's audio to and from the agent bridge.

Both callbacks run on pjmedia's clock thread, every 20 ms; they must never block. The port only
moves bytes: what they mean is the bridge session's business.
"""

from __future__ import annotations

from typing import Protocol

import pjsua2 as pj

from telephony.pjsip import CLOCK_RATE, FRAME_BYTES, FRAME_MS

_SILENCE = bytes(FRAME_BYTES)


class AudioSink(Protocol):
    def on_call_audio(self, pcm: bytes) -> None: ...

    def next_agent_audio(self) -> bytes: ...


class BridgeTap(pj.AudioMediaPort):  # type: ignore[misc]
    def __init__(self, sink: AudioSink, name: str) -> None:
        super().__init__()
        self._sink = sink
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, CLOCK_RATE, 1, FRAME_MS * 1000, 16)
        self.createPort(name, fmt)

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size:
            self._sink.on_call_audio(bytes(frame.buf))

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        pcm = self._sink.next_agent_audio() or _SILENCE
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = pj.ByteVector(pcm)
        frame.size = len(pcm)
