"""An AudioMediaPort that carries a call's audio to and from the agent bridge.

Both callbacks run on pjmedia's clock thread, every 20 ms; they must never block. The port only
moves bytes: what they mean is the bridge session's business.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Protocol

import pjsua2 as pj

from telephony.pjsip import CLOCK_RATE, FRAME_BYTES, FRAME_MS

_SILENCE = bytes(FRAME_BYTES)
_FRAME_NONE = pj.PJMEDIA_FRAME_TYPE_NONE
_FRAME_AUDIO = pj.PJMEDIA_FRAME_TYPE_AUDIO
_PTR = ctypes.sizeof(ctypes.c_void_p)


def _vector_bytes_by_pointer(vec: pj.ByteVector) -> bytes:
    """A SWIG ByteVector's contents read straight from its begin/end pointers (libstdc++'s
    std::vector layout): ~6 us for a frame, where bytes(vec) walks it element by element through
    SWIG (~500 us for 320 bytes, most of a bridged call's CPU)."""
    addr = int(vec.this)
    begin = ctypes.c_void_p.from_address(addr).value or 0
    end = ctypes.c_void_p.from_address(addr + _PTR).value or 0
    return ctypes.string_at(begin, end - begin) if end > begin else b""


def _vector_bytes_slow(vec: pj.ByteVector) -> bytes:
    return bytes(vec)


def _fill_vector_by_pointer(vec: pj.ByteVector, data: bytes) -> None:
    """Size the vector and copy data into its memory: ~9 us, where pj.ByteVector(data) builds it
    element by element through SWIG (~20 us for 320 bytes)."""
    vec.resize(len(data))
    begin = ctypes.c_void_p.from_address(int(vec.this)).value
    if begin:
        ctypes.memmove(begin, data, len(data))


def _fill_vector_slow(vec: pj.ByteVector, data: bytes) -> None:
    vec.clear()
    for byte in data:
        vec.append(byte)


def _pointer_layout_works() -> bool:
    # Trust the pointer layout only after it reads and writes a known vector exactly.
    probe = bytes(range(256)) + bytes(64)
    try:
        if _vector_bytes_by_pointer(pj.ByteVector(probe)) != probe:
            return False
        vec = pj.ByteVector()
        _fill_vector_by_pointer(vec, probe)
        return bytes(vec) == probe
    except (ValueError, TypeError, OSError):
        return False


_FAST = _pointer_layout_works()
vector_bytes: Callable[[pj.ByteVector], bytes] = (
    _vector_bytes_by_pointer if _FAST else _vector_bytes_slow
)
fill_vector: Callable[[pj.ByteVector, bytes], None] = (
    _fill_vector_by_pointer if _FAST else _fill_vector_slow
)


class AudioSink(Protocol):
    def on_call_audio(self, pcm: bytes) -> None: ...

    def next_agent_audio(self) -> bytes: ...


class BridgeTap(pj.AudioMediaPort):  # type: ignore[misc]
    """One of an engine's reusable taps. Destroying an AudioMediaPort while the conference clock
    runs can crash the process (pjmedia_conf_remove_port racing the clock thread's callback:
    bench/port_churn.py), so an engine creates at most one tap per call slot, attaches a call's
    session while the call is bridged, detaches it after, and destroys taps only once the clock
    has stopped (Engine.shutdown)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._sink: AudioSink | None = None
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, CLOCK_RATE, 1, FRAME_MS * 1000, 16)
        self.createPort(name, fmt)

    def attach(self, sink: AudioSink) -> None:
        self._sink = sink

    def detach(self) -> None:
        self._sink = None  # one reference swap: the clock thread sees the old sink or none

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        sink = self._sink
        if sink is not None and frame.type == _FRAME_AUDIO and frame.size:
            sink.on_call_audio(vector_bytes(frame.buf))

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        sink = self._sink
        pcm = sink.next_agent_audio() if sink is not None else None
        if not pcm or pcm == _SILENCE:
            # Nothing to say: no frame at all, which the conference bridge plays as silence,
            # and the agent is quiet most of a call.
            frame.type = _FRAME_NONE
            return
        frame.type = _FRAME_AUDIO
        fill_vector(frame.buf, pcm)
        frame.size = len(pcm)
