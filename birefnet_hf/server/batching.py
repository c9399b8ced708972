# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""A micro-batching queue: concurrent requests share one forward pass.

Requests put their preprocessed input on an asyncio queue and await a future. One worker task takes the first
waiting item, then collects more for at most `max_wait_ms` (or until `max_batch_size`), and runs the batch function
in a single background thread, so the model is only ever used by one thread and the event loop stays free to
accept and decode other uploads meanwhile. On a GPU this turns N concurrent requests into about N / batch forward
passes; on a CPU `max_batch_size=1` (one image per forward) is as fast.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from transformers.utils import logging

logger = logging.get_logger(__name__)

__all__ = ["MicroBatcher", "BatcherStats", "QueueFullError"]

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class QueueFullError(RuntimeError):
    """Raised by [`MicroBatcher.submit`] when `max_queue` requests are already waiting."""


@dataclass
class BatcherStats:
    """Counters of a [`MicroBatcher`] (served by `GET /healthz`)."""

    batches: int = 0
    items: int = 0
    largest_batch: int = 0
    failed_batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "batches": self.batches,
            "items": self.items,
            "largest_batch": self.largest_batch,
            "failed_batches": self.failed_batches,
        }


class MicroBatcher(Generic[ItemT, ResultT]):
    """Group concurrent [`submit`] calls into batches for `batch_function`.

    Args:
        batch_function: takes a list of items and returns one result per item, in order. It runs in one dedicated
            thread, one batch at a time.
        max_batch_size (`int`): most items per call.
        max_wait_ms (`float`): how long the first item of a batch waits for company.
        max_queue (`int`): items allowed to wait; more raise [`QueueFullError`] (the server answers 503).
    """

    def __init__(
        self,
        batch_function: Callable[[list[ItemT]], Sequence[ResultT]],
        max_batch_size: int = 8,
        max_wait_ms: float = 10.0,
        max_queue: int = 64,
    ):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}.")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}.")
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}.")
        self.batch_function = batch_function
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.stats = BatcherStats()
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._arrived: asyncio.Event | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    @property
    def waiting(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def start(self) -> None:
        """Start the worker on the running event loop."""
        if self.running:
            return
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        self._arrived = asyncio.Event()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="birefnet-batch"
        )
        self._worker = asyncio.create_task(self._run(), name="birefnet-micro-batcher")

    async def stop(self) -> None:
        """Stop the worker; waiting requests get a `RuntimeError`."""
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        if self._queue is not None:
            while not self._queue.empty():
                _, future = self._queue.get_nowait()
                if not future.done():
                    future.set_exception(RuntimeError("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def submit(self, item: ItemT) -> ResultT:
        """Queue `item` and wait for its result (raises what `batch_function` raised for its batch)."""
        if not self.running:
            raise RuntimeError(
                "the micro-batcher is not running (start() it inside the server's event loop)."
            )
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((item, future))
        except asyncio.QueueFull as error:
            raise QueueFullError(f"{self.max_queue} requests are already waiting") from error
        self._arrived.set()
        return await future

    async def _collect(self) -> list[tuple[ItemT, asyncio.Future]]:
        # Waiting on the queue with a timeout (`wait_for(queue.get(), t)`) can drop an item when the timeout and its
        # arrival coincide, so the first item is awaited without one and later arrivals are signalled by an event.
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while True:
            while len(batch) < self.max_batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            remaining = deadline - loop.time()
            if len(batch) >= self.max_batch_size or remaining <= 0:
                return batch
            self._arrived.clear()
            if not self._queue.empty():
                continue
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            live = [(item, future) for item, future in batch if not future.done()]  # skip cancelled requests
            if not live:
                continue
            items = [item for item, _ in live]
            try:
                results = await loop.run_in_executor(self._executor, self.batch_function, items)
                if len(results) != len(items):
                    raise RuntimeError(
                        f"batch function returned {len(results)} results for {len(items)} items"
                    )
            except Exception as error:  # every waiting request gets the error
                self.stats.failed_batches += 1
                logger.warning(f"a batch of {len(items)} failed: {error}")
                for _, future in live:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.stats.batches += 1
            self.stats.items += len(items)
            self.stats.largest_batch = max(self.stats.largest_batch, len(items))
            for (_, future), result in zip(live, results, strict=True):
                if not future.done():
                    future.set_result(result)
