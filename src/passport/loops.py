"""State kept per event loop: asyncio connections, clients and futures belong to the loop that made
them, and a process may run several loops over its life (a test client each, say)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One ``make()`` per running event loop, made on first use and forgotten with the loop."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._by_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is None:
            found = self._by_loop[loop] = self._make()
        return found

    def pop(self) -> T | None:
        """The running loop's one, if it has one, no longer kept (to close it at shutdown)."""
        return self._by_loop.pop(asyncio.get_running_loop(), None)
