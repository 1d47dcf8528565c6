"""The project's own commands run as processes: `manage.py dial` and the demo callee."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers.paths import REPO
from tests.helpers.sipp import HOST, free_udp_port
from tests.helpers.wait import wait_for

# A transactional call from a BFSI sender: what the dial tests place unless they say otherwise.
TRANSACTIONAL_CALL = ("--cli", "+911600123456", "--purpose", "transactional", "--sector", "bfsi")


def dial_cmd(*args: str) -> list[str]:
    """The command line of `manage.py dial` with these arguments."""
    return [sys.executable, str(REPO / "manage.py"), "dial", *args]


def dial(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        dial_cmd(*args),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def dial_json(env: dict[str, str], number: str, trunk: str, *extra: str) -> dict[str, Any]:
    """One transactional call with `manage.py dial --json`; its result line, parsed."""
    done = dial(env, number, "--trunk", trunk, *TRANSACTIONAL_CALL, "--json", *extra)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


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
        try:
            wait_for(self._ready, timeout=20, interval=0.05, what="run_callee to listen")
        except AssertionError as exc:
            self.stop()
            raise AssertionError(f"{exc}: {self.output()}") from None

    @property
    def target(self) -> str:
        return f"{HOST}:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"run_callee exited {self.proc.returncode}: {self.output()}")
        return f"callee listening on sip:{HOST}:{self.port}" in self.output()

    def stop(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode
