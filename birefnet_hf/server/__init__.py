# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""An HTTP server for background removal: `birefnet-hf serve --model PATH` (FastAPI + uvicorn).

Needs the `server` extra: `pip install "birefnet-hf[server]"`. See [`birefnet_hf.server.app`] for the endpoints and
[`birefnet_hf.server.batching`] for the micro-batching queue.
"""

from .batching import BatcherStats, MicroBatcher, QueueFullError

__all__ = ["BatcherStats", "MicroBatcher", "QueueFullError", "ServerSettings", "create_app"]


def __getattr__(name: str):
    # FastAPI is imported only when the app is wanted, so the batching queue works without the extra.
    if name in ("ServerSettings", "create_app"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
