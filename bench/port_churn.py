"""Does destroying a Python AudioMediaPort race pjsua2's conference clock? A reproduction.

    .venv/bin/python bench/port_churn.py [--rounds 1000] [--runs 3]

Each run is a fresh process with one pjsua2 endpoint (null sound device: the conference bridge
is clocked every 20 ms by its own thread) and a tone generator. Each round connects four ports
to the tone, lets the clock tick 0-30 ms, then ends them, in one of three ways:

- destroy:  four new Python AudioMediaPort subclasses per round, dropped at the end of it (what
            an engine does with a call's BridgeTap, and what the callee did with its probes);
- reuse:    the same four Python ports every round, only connected and disconnected;
- recorder: four new AudioMediaRecorders (C ports) per round, dropped at the end of it.

It prints how each run ended: a crash shows as SIGSEGV or an assertion in
pjmedia_conf_remove_port. The last line is one JSON object: runs survived per mode.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODES = ("destroy", "reuse", "recorder")
PORTS_PER_ROUND = 4


def churn(mode: str, rounds: int, sip_port: int) -> None:
    """One run, in this process: exits 0 when every round went through."""
    sys.path.insert(0, str(ROOT))
    import pjsua2 as pj

    from telephony.pjsip import CLOCK_RATE, FRAME_MS, start_endpoint

    class Port(pj.AudioMediaPort):  # type: ignore[misc]
        def __init__(self, name: str) -> None:
            super().__init__()
            self.frames = 0
            fmt = pj.MediaFormatAudio()
            fmt.init(pj.PJMEDIA_FORMAT_PCM, CLOCK_RATE, 1, FRAME_MS * 1000, 16)
            self.createPort(name, fmt)

        def onFrameReceived(self, frame: Any) -> None:
            self.frames += 1

    ep = start_endpoint(host="127.0.0.1", port=sip_port, user_agent="port-churn")
    tone = pj.ToneGenerator()
    tone.createToneGenerator(CLOCK_RATE, 1)
    desc = pj.ToneDesc()
    desc.freq1, desc.freq2, desc.on_msec, desc.off_msec = 440, 0, 1000, 250
    pattern = pj.ToneDescVector()
    pattern.append(desc)
    tone.play(pattern, True)
    kept = [Port(f"kept{k}") for k in range(PORTS_PER_ROUND)] if mode == "reuse" else []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            ports: list[Any] = []
            for k in range(PORTS_PER_ROUND):
                if mode == "reuse":
                    port = kept[k]
                elif mode == "destroy":
                    port = Port(f"p{i}.{k}")
                else:
                    port = pj.AudioMediaRecorder()
                    port.createRecorder(str(Path(tmp) / f"{k}.wav"))
                tone.startTransmit(port)
                ports.append(port)
            ep.libHandleEvents(random.randint(0, 30))
            for port in ports:
                tone.stopTransmit(port)
            del port
            ports.clear()  # "destroy" and "recorder": the last references go here
        # Stop the clock before the last ports and the tone go, then the library.
        ep.audDevManager().setNoDev()
        kept.clear()
        tone.stop()
        del tone
        ep.libDestroy()
    print(f"{mode}: {rounds} rounds done", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--sip-port", type=int, default=5893, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        churn(args.child, args.rounds, args.sip_port)
        return
    survived: dict[str, int] = {}
    for n, mode in enumerate(MODES):
        survived[mode] = 0
        for run in range(args.runs):
            cmd = [sys.executable, __file__, "--child", mode, "--rounds", str(args.rounds),
                   "--sip-port", str(5893 + n)]  # fmt: skip
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=60 + args.rounds / 10, check=False
            )
            tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
            ok = done.returncode == 0
            survived[mode] += ok
            print(f"{mode} run {run + 1}: exit {done.returncode} {'' if ok else tail[0]}")
    print(json.dumps({f"{mode}_runs_survived": f"{n}/{args.runs}" for mode, n in survived.items()}))


if __name__ == "__main__":
    main()
