"""Argon2id hashing of passwords and recovery keys.

Hashing is CPU-bound (about 15-30 ms at m=19 MiB, t=2). argon2-cffi releases the GIL while it
hashes, so threads hash in parallel — but no more at once than ``slots`` (about one per core this
process may use): each hash walks 19 MiB, and more hashes than cores only evict each other from the
CPU caches, which makes every one of them slower.

``hash`` and ``verify`` (called from plain ``def`` routes, on Starlette's thread pool) run the hash on
``slots`` threads of their own, not on whichever request thread asks: each thread allocates its
19 MiB from its own malloc arena, so a few long-lived threads hash in memory that is already mapped
and partly cached, where forty request threads took turns with forty cold buffers. Measured on a
login load (bench/login.py, PostgreSQL, 2 cores): 16.0 ms of CPU per verify on the dedicated threads
against 18.6-19.0 ms on the request threads, and 16.3 ms in a bare process.

``verify_async`` (the API's password login on PostgreSQL) is for an event loop. With more than one
slot it awaits a hashing thread. With one slot — ``passport serve --workers N`` on N cores — it hashes
on the loop's own thread: the process can run only one hash at a time either way, and the hand-offs
to a hashing thread and back (two wake-ups, each on caches the hash just flushed) cost ≈ 1 ms of CPU
per login, 6 % of the machine's hashing rate (bench/README.md). The price is that the loop answers
nothing else during those ≈ 18 ms; ``_OneHashPerTurn`` lets it poll for I/O and run everything else
that is ready between two hashes, so another request waits for the hash in progress (now and then
two), not for a queue of them: /healthz on a worker saturated with logins answered in 11.5 ms p50,
17 ms p99, 34 ms at most.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from passport.loops import PerLoop

_REFUSED = (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeEncodeError)


class _OneHashPerTurn:
    """At most one inline hash per turn of an event loop. A loop runs, in one turn, every callback
    that was ready when the turn began; several logins whose account reads came back together would
    otherwise hash back to back while the loop polls nothing. The first takes the turn; the others
    queue (first come, first served) and are woken one at a time, each a turn later: the hand-over is
    a ``call_soon`` callback, which runs in the next turn, after an I/O poll. A waiter is woken only
    when its turn comes, not every turn to look (with 25 logins queued, looking took ≈ 25 coroutine
    steps per hash)."""

    def __init__(self) -> None:
        self._turns: PerLoop[_Turns] = PerLoop(_Turns)

    async def take(self) -> None:
        loop = asyncio.get_running_loop()
        turns = self._turns.get()
        if turns.taken:
            handed = loop.create_future()
            turns.waiting.append(handed)
            try:
                await handed
            except asyncio.CancelledError:
                if handed.done() and not handed.cancelled():
                    loop.call_soon(turns.pass_on)  # handed the turn, then cancelled: pass it on
                raise
        turns.taken = True
        loop.call_soon(turns.pass_on)


class _Turns:
    def __init__(self) -> None:
        self.taken = False
        self.waiting: deque[asyncio.Future] = deque()

    def pass_on(self) -> None:
        while self.waiting:
            handed = self.waiting.popleft()
            if not handed.done():  # a cancelled waiter is skipped
                handed.set_result(None)
                return
        self.taken = False


class Hasher:
    def __init__(self, memory_kib: int, time_cost: int, parallelism: int, slots: int = 1) -> None:
        self._ph = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self.slots = max(1, slots)
        self._threads = ThreadPoolExecutor(self.slots, thread_name_prefix="argon2")
        self._turns = _OneHashPerTurn()
        # Verified against when the account does not exist, so both answers cost one hash.
        self._decoy = self._ph.hash("decoy password that matches nothing")

    def hash(self, secret: str) -> str:
        return self._threads.submit(self._ph.hash, secret).result()

    def verify(self, stored: str | None, secret: str) -> bool:
        try:
            # bool(stored), not "is not None": an empty hash must not let the decoy password in.
            return self._threads.submit(self._ph.verify, stored or self._decoy, secret).result() and bool(stored)
        except _REFUSED:
            return False

    async def verify_async(self, stored: str | None, secret: str) -> bool:
        """``verify`` for an event loop: on the loop's thread with one slot, else on a hashing thread
        (see the module's docstring)."""
        try:
            if self.slots == 1:
                await self._turns.take()
                return self._ph.verify(stored or self._decoy, secret) and bool(stored)
            return await asyncio.wrap_future(self._threads.submit(self._ph.verify, stored or self._decoy, secret)) \
                and bool(stored)
        except _REFUSED:
            return False

    def burn(self, secret: str) -> None:
        """Spend the time of one verification without an account (enumeration safety)."""
        self.verify(None, secret)

    def close(self) -> None:
        self._threads.shutdown(wait=True)

    def needs_rehash(self, stored: str) -> bool:
        return self._ph.check_needs_rehash(stored)
