"""python manage.py run_agent: the built-in reference agent, for demos and end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import signal
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from telephony.reference_agent import bound_port, start_reference_agent


class Command(BaseCommand):
    help = "Run the reference voice agent (a Twilio Media Streams WebSocket server)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument(
            "--talk-seconds",
            type=float,
            default=3.0,
            help="Seconds after start before the agent closes the socket (hangs up).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(
            self._serve(
                host=options["host"], port=options["port"], talk_seconds=options["talk_seconds"]
            )
        )

    async def _serve(self, *, host: str, port: int, talk_seconds: float) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        server = await start_reference_agent(
            host, port, talk_seconds=talk_seconds, on_stream_end=self._write_record
        )
        self.stdout.write(f"agent listening on ws://{host}:{bound_port(server)}")
        self.stdout.flush()
        try:
            await stop.wait()
        finally:
            # Closes open streams too (close code 1001), so callers see a clean hang-up.
            server.close()
            await server.wait_closed()
        self.stdout.write("agent stopped")
        self.stdout.flush()

    def _write_record(self, record: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(record))
        self.stdout.flush()
