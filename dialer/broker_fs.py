"""kombu's filesystem transport (the embedded broker), with each message appearing whole.

kombu's own ``_put`` creates the message file in the queue folder, then locks and writes it,
while its ``_get`` takes files without locking. A consumer polling between the two moves away an
empty file, fails to decode it (JSONDecodeError) and the Celery worker dies with "Unrecoverable
error". Any publisher in another process can race it: beat, the pool's children, the web process.
Here a message is written under a name the consumer ignores and renamed into place (same folder,
so the rename is atomic): a consumer sees all of it or nothing.

Selected by settings (CELERY_BROKER_TRANSPORT) whenever the broker URL is ``filesystem://``.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    # The stubs name the argument "message" in kombu's base channel, "payload" in this one's
    # parent: no override satisfies both, and kombu passes it by position.
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        # kombu's own name: consumers take files in name order, and the name's part after the
        # first "." selects the queue.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # Starts with ".": its part after the first "." never equals "<queue>.msg".
        staging = os.path.join(self.data_folder_out, f".{name}.part")
        data = dumps(payload).encode("utf-8")
        try:
            with open(staging, "wb") as f:
                f.write(data)
            os.replace(staging, final)
        except OSError as exc:
            try:
                os.unlink(staging)
            except OSError:
                pass
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
