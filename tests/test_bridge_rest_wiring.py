"""ENGINE_REST_MAX_CONN_PER_CLIENT reaches the REST server the engines run, through the engine
host's bridge factory and BridgeRunner (the limit itself is tested in test_bridge_rest.py)."""

from __future__ import annotations

import select
import socket
import time
from typing import Any

from django.conf import settings as django_settings


def _connect_from(source_ip: str, base_url: str) -> socket.socket:
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source_ip, 0))
    sock.settimeout(5)
    sock.connect((host, int(port)))
    return sock


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    readable, _, _ = select.select([sock], [], [], within)
    if not readable:
        return False
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def test_engine_rest_max_conn_per_client_setting_limits_the_engines_rest_server(
    settings: Any,
) -> None:
    from campaigns.engine_host import _bridge_factory

    settings.ENGINE_REST_HOST = "127.0.0.1"
    settings.ENGINE_REST_PORT = 0
    settings.ENGINE_REST_MAX_CONN_PER_CLIENT = 2
    runner: Any = _bridge_factory(django_settings.ENGINE_BASE_PORT)()
    try:
        base = runner.rest_base_url
        held = [_connect_from("127.0.0.5", base) for _ in range(2)]
        try:
            time.sleep(0.1)  # both accepted and counted
            with _connect_from("127.0.0.5", base) as third:
                assert _closed_by_server(third, 1.0)  # over the setting's 2: closed at once
            assert not any(_closed_by_server(sock, 0.0) for sock in held)
        finally:
            for sock in held:
                sock.close()
    finally:
        runner.shutdown()
