"""ENGINE_REST_MAX_CONN_PER_CLIENT reaches the REST server the engines run, through the engine
host's bridge factory and BridgeRunner (the limit itself is tested in test_bridge_rest.py)."""

from __future__ import annotations

import socket
from typing import Any

from django.conf import settings as django_settings

from tests.helpers.bridge import closed_by_server, connect_from
from tests.helpers.wait import wait_for


def _connect_from(source_ip: str, base_url: str) -> socket.socket:
    return connect_from(source_ip, int(base_url.rsplit(":", 1)[1]))


def test_engine_rest_max_conn_per_client_setting_limits_the_engines_rest_server(
    settings: Any,
) -> None:
    from telephony.pool.host import _bridge_factory

    settings.ENGINE_REST_HOST = "127.0.0.1"
    settings.ENGINE_REST_PORT = 0
    settings.ENGINE_REST_MAX_CONN_PER_CLIENT = 2
    runner: Any = _bridge_factory(django_settings.ENGINE_BASE_PORT)()
    try:
        base = runner.rest_base_url
        rest = runner._rest
        held = [_connect_from("127.0.0.5", base) for _ in range(2)]
        try:
            wait_for(lambda: rest._per_client.get("127.0.0.5") == 2, what="both counted")
            with _connect_from("127.0.0.5", base) as third:
                assert closed_by_server(third, 1.0)  # over the setting's 2: closed at once
            assert not any(closed_by_server(sock, 0.0) for sock in held)
        finally:
            for sock in held:
                sock.close()
    finally:
        runner.shutdown()
