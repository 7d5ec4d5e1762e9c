"""Database calls off the event loop, on one thread of their own.

Both adapters run on asyncio; SQLite calls block. They go to a single dedicated thread rather
than the default executor, which is busy with model work: an acknowledgement or a button
click must never wait behind a generation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")


class StoreThread:
    """``await run(fn, *args)`` runs ``fn`` on the store thread; ``call_and_close()`` ends the thread."""

    def __init__(self, name: str = "askdesk-store") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._closed = False

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args, **kwargs))

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Queue ``fn`` on the store thread without waiting for it (from any thread)."""
        return self._executor.submit(fn, *args)

    def call_and_close(self, fn: Callable[[], Any] | None = None) -> None:
        """Run ``fn`` (e.g. closing the thread's SQLite connection) on the thread, then stop it (once)."""
        if self._closed:
            return
        self._closed = True
        if fn is not None:
            self._executor.submit(fn).result()
        self._executor.shutdown(wait=True)
