"""Notice delivery benchmark (``make bench``): email notices delivered per second by two workers.

Runs in a private, throw-away data dir, against a local aiosmtpd server on 127.0.0.1 only:

1. migrate (SQLite in the data dir, or ``--postgres`` a throw-away database whose name starts with
   ``bench``), create one account with a verified email address, queue ``--notices`` email notices
   through ``notify_account`` (the outbox, in batches of 500 per transaction);
2. start ``--workers`` worker processes, each looping ``deliver_due`` (as ``passport worker`` does)
   with the SMTP sender pointed at the local server;
3. stop when the server has accepted every notice (or after ``--timeout``), then check that no
   notice arrived twice and none is missing, and print notices/second; JSON goes to
   bench/results/notices-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
SRC = BENCH_DIR.parent / "src"
RESULTS_DIR = BENCH_DIR / "results"
ADDRESS = "bench-notices@example.com"

if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


class CountingServer:
    """aiosmtpd handler: keeps the notice number of every accepted message."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.numbers: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        import email
        import email.policy

        body = email.message_from_bytes(envelope.content, policy=email.policy.default).get_content()
        number = body.strip().rsplit(" ", 1)[-1]
        with self.lock:
            self.numbers.append(number)
        return "250 OK"


def environment(data_dir: Path, smtp_port: int, database_url: str | None) -> dict[str, str]:
    env = {
        "PASSPORT_ENV": "test", "PASSPORT_DATA_DIR": str(data_dir), "PASSPORT_LOG_LEVEL": "WARNING",
        "PASSPORT_EMAIL_BACKEND": "smtp", "PASSPORT_SMTP_HOST": "127.0.0.1", "PASSPORT_SMTP_PORT": str(smtp_port),
        "PASSPORT_SMTP_SECURITY": "none", "PASSPORT_EMAIL_FROM": "bench <no-reply@bench.example>",
    }
    if database_url:
        env["PASSPORT_DATABASE_URL"] = database_url
    return env


def prepare(env: dict[str, str], count: int) -> None:
    os.environ.update(env)
    from passport.accounts.models import EMAIL, PHONE, Account
    from passport.db import migrate, new_id
    from passport.notify import outbox
    from passport.runtime import build_runtime
    from passport.settings import Settings

    settings = Settings()
    migrate(settings.resolved_database_url)
    rt = build_runtime(settings, pool_size=2)
    now = rt.clock.now()
    with rt.db.write() as db:
        account_id = new_id()
        account = Account(id=account_id, nickname="bench", created_at=now, updated_at=now,
                          phone_enc=rt.keys.cipher.encrypt("+8613900000000", PHONE, account_id),
                          phone_bidx=rt.keys.blind_index("phone", "+8613900000000"),
                          email_enc=rt.keys.cipher.encrypt(ADDRESS, EMAIL, account_id),
                          email_bidx=rt.keys.blind_index("email", ADDRESS))
        db.add(account)
        db.flush()
        account_id = account.id
    for start in range(0, count, 500):
        with rt.db.write() as db:
            for i in range(start, min(start + 500, count)):
                outbox.notify_account(rt, db, account_id=account_id, template="notice_message",
                                       params={"title": "bench", "text": f"bench notice {i}"}, channels=("email",))
    rt.close()


def work(env: dict[str, str], stop_at: float, delivered) -> None:
    os.environ.update(env)
    from passport.logs import configure_logging
    from passport.notify import outbox
    from passport.runtime import build_runtime
    from passport.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    rt = build_runtime(settings, pool_size=2)
    idle_rounds = 0
    while time.monotonic() < stop_at and idle_rounds < 20:
        done = outbox.deliver_due(rt, limit=50)
        with delivered.get_lock():
            delivered.value += done
        idle_rounds = 0 if done else idle_rounds + 1
        if not done:
            time.sleep(0.05)
    rt.close()


def reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    name = url.rsplit("/", 1)[-1]
    if not name.startswith("bench"):
        raise SystemExit(f"--postgres database must be named bench…, not {name!r} (it is dropped)")
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notices", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres", help="a throw-away PostgreSQL database named bench… (default: SQLite)")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    from aiosmtpd.controller import Controller

    return run(args, Controller)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, controller_class) -> int:
    handler = CountingServer()
    server = controller_class(handler, hostname="127.0.0.1", port=_free_port())
    server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="passport-bench-notices-") as tmp:
            if args.postgres:
                reset_postgres(args.postgres)
            env = environment(Path(tmp), server.port, args.postgres)
            context = multiprocessing.get_context("spawn")
            prep = context.Process(target=prepare, args=(env, args.notices))
            prep.start()
            prep.join()
            if prep.exitcode != 0:
                print("bench: preparing the outbox failed", file=sys.stderr)
                return 1
            delivered = context.Value("i", 0)
            started = time.monotonic()
            workers = [context.Process(target=work, args=(env, started + args.timeout, delivered))
                       for _ in range(args.workers)]
            for worker in workers:
                worker.start()
            while len(handler.numbers) < args.notices and time.monotonic() - started < args.timeout:
                time.sleep(0.01)
            elapsed = time.monotonic() - started
            for worker in workers:
                worker.join(60)
    finally:
        server.stop()
    numbers = list(handler.numbers)
    result = {
        "bench": "notices", "at": datetime.now(UTC).isoformat(),
        "database": "postgresql" if args.postgres else "sqlite",
        "workers": args.workers, "notices": args.notices, "received": len(numbers), "distinct": len(set(numbers)),
        "seconds": round(elapsed, 3), "per_second": round(len(numbers) / elapsed, 1) if elapsed else None,
        "cpus": os.cpu_count(),
    }
    ok = result["received"] == result["distinct"] == args.notices
    print(f"notices: {result['per_second']}/s delivered by {args.workers} workers over SMTP "
          f"({result['received']} of {args.notices} in {result['seconds']} s, {result['database']}; "
          f"{'no duplicate, none lost' if ok else 'DUPLICATES OR LOSSES'})")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"notices-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json").write_text(
        json.dumps(result, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
