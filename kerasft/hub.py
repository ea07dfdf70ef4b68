"""Fail fast, with a fix, when a hub id is used without a network.

Without this check `transformers` and `datasets` retry for most of a minute
before failing with a message that does not say which recipe field to change.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from kerasft.errors import UserError

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def require_hub(kind: str, name: str, fix: str, timeout: float = 3.0) -> None:
    """Raises a UserError unless the Hugging Face Hub answers (or the user chose offline mode, i.e. the cache)."""
    if any(os.environ.get(variable, "").lower() in ("1", "true", "yes") for variable in OFFLINE_VARIABLES):
        return  # the libraries then read their cache and say themselves what is missing
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=timeout).close()
    except OSError:
        raise UserError(
            f"{kind} {name!r} is not a local path and the Hugging Face Hub ({endpoint.hostname}) cannot be reached: "
            f"{fix} "
            "(or set HF_HUB_OFFLINE=1 to use a copy already in the Hugging Face cache)"
        ) from None
