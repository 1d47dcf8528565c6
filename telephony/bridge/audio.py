"""G.711 (mu-law, A-law) <-> 16-bit little-endian PCM at 8 kHz, in 20 ms frames."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # audioop is deprecated (removed in 3.13) but is the fastest G.711 codec in the stdlib of
    # our 3.11/3.12 targets; swap in audioop-lts when we move past 3.12.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

SAMPLE_RATE = 8000
FRAME_MS = 20
SAMPLE_WIDTH = 2
PCM_FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * SAMPLE_WIDTH  # 320
ULAW_FRAME_BYTES = PCM_FRAME_BYTES // SAMPLE_WIDTH  # 160


def pcm16_to_ulaw(pcm: bytes) -> bytes:
    return audioop.lin2ulaw(pcm, SAMPLE_WIDTH)


def ulaw_to_pcm16(ulaw: bytes) -> bytes:
    return audioop.ulaw2lin(ulaw, SAMPLE_WIDTH)


def pcm16_to_alaw(pcm: bytes) -> bytes:
    return audioop.lin2alaw(pcm, SAMPLE_WIDTH)


def alaw_to_pcm16(alaw: bytes) -> bytes:
    return audioop.alaw2lin(alaw, SAMPLE_WIDTH)


def silence_pcm(frame_bytes: int = PCM_FRAME_BYTES) -> bytes:
    return bytes(frame_bytes)
