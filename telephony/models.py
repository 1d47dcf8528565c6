"""The telephony app's models. The engine pool's own model lives with the pool
(telephony.pool.models); imported here so that Django registers it under this app."""

from __future__ import annotations

from telephony.pool.models import EngineProcess

__all__ = ["EngineProcess"]
