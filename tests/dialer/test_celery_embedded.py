"""Celery on the embedded default (kombu's filesystem transport): the README's worker and beat
commands keep running.

The crash this guards against: kombu's filesystem transport creates a message file, then writes
it. A consumer polling in between moves the still-empty file away, fails to decode it
(JSONDecodeError) and the worker dies with "Unrecoverable error". Every publisher in another
process races the consumer this way: beat, the prefork pool's children (dispatch enqueues
dial_attempt), the web process.
"""

from __future__ import annotations

import builtins
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from kombu import Connection

from dialer.processes import ManagedProcess, celery_cmd
from tests.helpers.paths import REPO

_NOT_EMBEDDED = ("DATABASE_URL", "TEST_DATABASE_NAME", "REDIS_URL", "CELERY_BROKER_URL")


def _embedded_env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _NOT_EMBEDDED}
    env.update(
        DJANGO_SETTINGS_MODULE="dialer.settings",
        DIALER_VAR_DIR=str(tmp_path / "var"),
        PYTHONUNBUFFERED="1",
    )
    env.update(values)
    return env


# --- the publish/consume race, made deterministic ----------------------------------------------


class _PollBeforeWrite:
    """A file being written to the queue folder; a consumer polls just before its bytes land."""

    def __init__(self, file: Any, poll: Callable[[], None]) -> None:
        self._file = file
        self._poll = poll

    def write(self, data: bytes) -> int:
        self._poll()
        return int(self._file.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> _PollBeforeWrite:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def _publish_while_a_consumer_polls(transport: str, folder: Path) -> list[object]:
    """What a consumer sees polling mid-write, then after the publish; exceptions as values."""
    folder.mkdir()
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(folder / "control"),
        "store_processed": False,
    }
    seen: list[object] = []
    with (
        Connection("filesystem://", transport=transport, transport_options=options) as publisher,
        Connection("filesystem://", transport=transport, transport_options=options) as consumer,
    ):
        channel: Any = consumer.default_channel  # _get and _put are the transport's internals

        def poll() -> None:
            try:
                seen.append(channel._get("dialer"))
            except Empty:
                seen.append(None)
            except ValueError as exc:  # json.JSONDecodeError
                seen.append(exc)

        real_open = builtins.open

        def open_spied(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            handle = real_open(file, mode, *args, **kwargs)
            if "w" in mode and str(file).startswith(str(folder)):
                return _PollBeforeWrite(handle, poll)
            return handle

        with mock.patch("builtins.open", open_spied):
            publishing: Any = publisher.default_channel
            publishing._put("dialer", {"body": "hello"})
        poll()
    return seen


def test_kombus_own_transport_shows_a_consumer_the_half_written_message(tmp_path: Path) -> None:
    # The bug, kept as a record of why dialer.broker_fs exists.
    during, _after = _publish_while_a_consumer_polls("filesystem", tmp_path / "q")
    assert isinstance(during, json.JSONDecodeError)


def test_a_message_appears_in_the_queue_only_once_whole(tmp_path: Path) -> None:
    seen = _publish_while_a_consumer_polls("dialer.broker_fs:Transport", tmp_path / "q")
    assert seen == [None, {"body": "hello"}]
    assert [name for name in os.listdir(tmp_path / "q") if name != "control"] == []  # no .part


# --- the embedded configuration ----------------------------------------------------------------

_CONF_PROBE = """
import json
from dialer.celery import app
conn = app.connection_for_write()
print(json.dumps({
    "transport": type(conn.transport).__module__ + ":" + type(conn.transport).__name__,
    "pool": app.conf.worker_pool,
    "concurrency": app.conf.worker_concurrency,
}))
"""


def _celery_conf(env: dict[str, str]) -> dict[str, object]:
    run = subprocess.run(
        [sys.executable, "-c", _CONF_PROBE],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    conf: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
    return conf


@pytest.mark.slow
def test_the_embedded_broker_uses_the_whole_message_transport_and_one_solo_worker(
    tmp_path: Path,
) -> None:
    assert _celery_conf(_embedded_env(tmp_path)) == {
        "transport": "dialer.broker_fs:Transport",
        "pool": "solo",
        "concurrency": 1,
    }


@pytest.mark.slow
def test_redis_keeps_celerys_own_transport_and_pool(tmp_path: Path) -> None:
    conf = _celery_conf(_embedded_env(tmp_path, REDIS_URL="redis://127.0.0.1:6379/11"))
    assert conf == {"transport": "kombu.transport.redis:Transport", "pool": "prefork",
                    "concurrency": None}  # fmt: skip


def test_a_command_line_pool_and_concurrency_give_way_on_the_filesystem_broker() -> None:
    from dialer.celery import one_solo_worker_on_filesystem_broker

    worker = SimpleNamespace(
        app=SimpleNamespace(conf=SimpleNamespace(broker_url="filesystem://")),
        pool_cls="prefork",
        concurrency=4,
    )
    one_solo_worker_on_filesystem_broker(sender=worker)
    assert (worker.pool_cls, worker.concurrency) == ("solo", 1)

    on_redis = SimpleNamespace(
        app=SimpleNamespace(conf=SimpleNamespace(broker_url="redis://127.0.0.1:6379/0")),
        pool_cls="prefork",
        concurrency=4,
    )
    one_solo_worker_on_filesystem_broker(sender=on_redis)
    assert (on_redis.pool_cls, on_redis.concurrency) == ("prefork", 4)


# --- the README's commands, for real ---------------------------------------------------------

RUN_S = 20.0


@pytest.mark.slow
def test_readme_worker_and_beat_keep_running_on_the_embedded_broker(tmp_path: Path) -> None:
    # A 20 ms tick has beat publish 50 messages a second into the consumer's polling: before the
    # fix this killed the worker within 20 s in about half the runs, not only within minutes.
    env = _embedded_env(tmp_path, DIALER_TICK_SECONDS="0.02")
    subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "migrate", "--noinput", "-v", "0"],
        env=env,
        cwd=REPO,
        check=True,
        timeout=120,
    )
    schedule = str(tmp_path / "var" / "celerybeat-schedule")
    worker = ManagedProcess(
        "worker",
        celery_cmd("worker", "-Q", "dialer", "-c", "4", "--loglevel", "INFO"),
        env=env,
        log_dir=tmp_path,
    )
    beat = ManagedProcess(
        "beat", celery_cmd("beat", "-s", schedule, "--loglevel", "INFO"), env=env, log_dir=tmp_path
    )
    try:
        worker.start(ready="ready.", timeout=60)
        beat.start()
        # Running for RUN_S is the test (the worker must keep going), checked every half second.
        deadline = time.monotonic() + RUN_S
        while time.monotonic() < deadline:
            assert worker.proc is not None and worker.proc.poll() is None, (
                "the worker died:\n" + worker.log_text()[-3000:]
            )
            time.sleep(0.5)
        log = worker.log_text()
    finally:
        beat.stop()
        worker.stop()
    assert "Unrecoverable error" not in log
    assert "concurrency: 1 (solo)" in log  # -c 4 gave way to one solo process
    dispatched = log.count("Task campaigns.dispatch[")
    assert dispatched >= 100, log[-3000:]  # received and run, tick after tick
    assert "succeeded" in log
