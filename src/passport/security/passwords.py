"""Argon2id hashing of passwords and recovery keys.

Hashing is CPU-bound (about 15-30 ms at m=19 MiB, t=2): handlers that call it are plain ``def``
routes, which Starlette runs in its thread pool, so the event loop never waits on a hash.
argon2-cffi releases the GIL while it hashes, so threads hash in parallel — but no more at once
than ``slots`` (about one per core this process may use): each hash walks 19 MiB, and more hashes
than cores only evict each other from the CPU caches, which makes every one of them slower.

The hashes run on ``slots`` threads of their own, not on whichever request thread asks: each
thread allocates its 19 MiB from its own malloc arena, so a few long-lived threads hash in memory
that is already mapped and partly cached, where forty request threads took turns with forty cold
buffers. Measured on a login load (bench/login.py, PostgreSQL, 2 cores): 16.0 ms of CPU per verify
on the dedicated threads against 18.6-19.0 ms on the request threads, and 16.3 ms in a bare process.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Hasher:
    def __init__(self, memory_kib: int, time_cost: int, parallelism: int, slots: int = 1) -> None:
        self._ph = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._threads = ThreadPoolExecutor(max(1, slots), thread_name_prefix="argon2")
        # Verified against when the account does not exist, so both answers cost one hash.
        self._decoy = self._ph.hash("decoy password that matches nothing")

    def hash(self, secret: str) -> str:
        return self._threads.submit(self._ph.hash, secret).result()

    def verify(self, stored: str | None, secret: str) -> bool:
        try:
            # bool(stored), not "is not None": an empty hash must not let the decoy password in.
            return self._threads.submit(self._ph.verify, stored or self._decoy, secret).result() and bool(stored)
        except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeEncodeError):
            return False

    def burn(self, secret: str) -> None:
        """Spend the time of one verification without an account (enumeration safety)."""
        self.verify(None, secret)

    def close(self) -> None:
        self._threads.shutdown(wait=True)

    def needs_rehash(self, stored: str) -> bool:
        return self._ph.check_needs_rehash(stored)
