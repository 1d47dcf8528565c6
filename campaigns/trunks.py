"""What an engine needs to send an INVITE through a trunk: the request URI and the digest secret.

The secret is never stored in the database: it is read from the environment by the trunk's name
(TRUNK_<NAME>_PASSWORD, or TRUNK_<NAME>_PASSWORD_FILE), when a call is handed to an engine.
"""

from __future__ import annotations

from dialer.env import env_str


def trunk_target_uri(*, sip_uri: str, transport: str, number: str) -> str:
    """sip:<number>@<the trunk's host[:port]>, with ;transport= unless it is plain UDP."""
    host = sip_uri.removeprefix("sips:").removeprefix("sip:")
    target = f"sip:{number}@{host}"
    if transport != "udp":
        target += f";transport={transport}"
    return target


def trunk_password(name: str) -> str:
    return env_str(f"TRUNK_{name.upper().replace('-', '_')}_PASSWORD", "")
