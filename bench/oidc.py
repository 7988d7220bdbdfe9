"""Single sign-on throughput (issue 19): the token endpoint (authorization_code exchange, refresh with
rotation), userinfo and introspection, against /healthz of the same server.

Runs against a private, throw-away data dir (SQLite, or ``--postgres URL`` of a throw-away database)
and one ``passport serve`` process on 127.0.0.1: seeds accounts, one confidential app and a code per
exchange straight through the services, then drives each phase for ``--seconds`` with ``--concurrency``
clients. CPU per operation is the server process's user+system time over the phase divided by the
requests it answered (``/proc``, Linux). Prints a table and writes JSON to bench/results/.

    python bench/oidc.py [--seconds 5] [--concurrency 16] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
SRC = BENCH_DIR.parent / "src"
REDIRECT = "https://rp.example.com/callback"
TICKS = os.sysconf("SC_CLK_TCK")
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(env: dict[str, str], accounts: int, codes: int) -> tuple[dict, list[str]]:
    """Accounts, one confidential app with a grant from each, and ``codes`` unused codes (in memory
    only: the database holds their digests)."""
    os.environ.update(env)
    from passport.accounts.models import Account
    from passport.audit.service import Origin
    from passport.db import migrate, new_id
    from passport.oidc import service
    from passport.oidc.models import OidcCode, OidcGrant
    from passport.runtime import build_runtime
    from passport.security.tokens import new_token, token_digest
    from passport.settings import Settings

    settings = Settings()
    migrate(settings.resolved_database_url)
    rt = build_runtime(settings)
    try:
        app = service.create_app(rt, Origin(channel="cli"), name="bench", redirect_uris=[REDIRECT],
                                 scopes=["openid", "profile", "status"], resource_server=True)
        now = datetime.now(UTC)
        ids = [new_id() for _ in range(accounts)]
        plain = []
        with rt.db.write() as db:
            db.add_all(Account(id=i, nickname=f"bench{n}", created_at=now, updated_at=now) for n, i in enumerate(ids))
            db.flush()
            app_id = service.find_app(db, app["client_id"]).id
            db.add_all(OidcGrant(id=new_id(), account_id=i, app_id=app_id, scopes=["openid", "profile", "status"],
                                 granted_at=now) for i in ids)
            for n in range(codes):
                code = new_token()
                plain.append(code)
                db.add(OidcCode(code_hash=token_digest(code), app_id=app_id, account_id=ids[n % accounts],
                                redirect_uri=REDIRECT, scope="openid profile status", auth_time=now, amr="pwd",
                                acr="urn:orginone:passport:loa:1", created_at=now,
                                expires_at=now + timedelta(hours=2)))
        return app, plain
    finally:
        rt.close()


def cpu_of(pid: int) -> float:
    """User + system seconds of the server process and its children (uvicorn's worker)."""
    total = 0.0
    for p in [pid, *children(pid)]:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


async def phase(name: str, base: str, seconds: float, concurrency: int, pid: int, make_request) -> dict:
    """Run ``make_request(client, worker)`` in ``concurrency`` loops for ``seconds``."""
    done = failed = 0
    stop_at = time.monotonic() + seconds
    cpu_before, started = cpu_of(pid), time.monotonic()

    async def loop(worker: int) -> None:
        nonlocal done, failed
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            while time.monotonic() < stop_at:
                ok = await make_request(client, worker)
                if ok is None:
                    return  # nothing left to use (codes)
                done += ok
                failed += not ok

    await asyncio.gather(*(loop(w) for w in range(concurrency)))
    elapsed, cpu = time.monotonic() - started, cpu_of(pid) - cpu_before
    result = {"phase": name, "requests": done, "failed": failed, "per_second": round(done / elapsed, 1),
              "cpu_ms_per_op": round(1000 * cpu / done, 3) if done else None}
    print(f"{name:<22} {result['per_second']:>9} /s   {result['cpu_ms_per_op'] or 0:>7} ms CPU/op   "
          f"{done} ok, {failed} failed")
    return result


async def run(args, base: str, pid: int, app: dict, codes: list[str]) -> list[dict]:
    auth = (app["client_id"], app["client_secret"])
    results = [await phase("healthz", base, args.seconds, args.concurrency, pid,
                           lambda c, w: _ok(c.get("/healthz")))]
    pairs: list[dict] = []

    async def exchange(client, worker):
        if not codes:
            return None
        answer = await client.post("/oauth/token", auth=auth, data={
            "grant_type": "authorization_code", "code": codes.pop(), "redirect_uri": REDIRECT})
        if answer.status_code == 200:
            pairs.append(answer.json())
        return answer.status_code == 200

    results.append(await phase("token (code exchange)", base, args.seconds, args.concurrency, pid, exchange))
    chains = {w: pairs[w::args.concurrency] for w in range(args.concurrency)}
    latest: dict[int, list[dict]] = {w: list(v) for w, v in chains.items()}

    async def refresh(client, worker):
        mine = latest[worker]
        if not mine:
            return None
        current = mine.pop(0)
        answer = await client.post("/oauth/token", auth=auth, data={
            "grant_type": "refresh_token", "refresh_token": current["refresh_token"]})
        if answer.status_code == 200:
            mine.append(answer.json())  # rotated: the new pair goes to the back of this worker's queue
        return answer.status_code == 200

    results.append(await phase("token (refresh)", base, args.seconds, args.concurrency, pid, refresh))
    live = [p["access_token"] for chain in latest.values() for p in chain]

    async def userinfo(client, worker):
        token = live[(worker + int(time.monotonic() * 1000)) % len(live)]
        return await _ok(client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {token}"}))

    async def introspect(client, worker):
        token = live[(worker + int(time.monotonic() * 1000)) % len(live)]
        answer = await client.post("/oauth/introspect", auth=auth, data={"token": token})
        return answer.status_code == 200 and answer.json().get("active") is True

    results.append(await phase("userinfo", base, args.seconds, args.concurrency, pid, userinfo))
    results.append(await phase("introspection", base, args.seconds, args.concurrency, pid, introspect))
    return results


async def _ok(request) -> bool:
    return (await request).status_code == 200


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--codes", type=int, default=4000)
    parser.add_argument("--postgres", help="a throw-away PostgreSQL database URL (default: SQLite)")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="passport-bench-oidc-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSPORT_")}
    env.update({"PASSPORT_ENV": "test", "PASSPORT_DATA_DIR": str(data_dir), "PASSPORT_LOG_LEVEL": "WARNING",
                "PASSPORT_BASE_URL": f"http://127.0.0.1:{port}", "PASSPORT_OIDC_PER_IP_MINUTE": "1000000000",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))})
    if args.postgres:
        env["PASSPORT_DATABASE_URL"] = args.postgres
    server = None
    try:
        app, codes = seed(env, args.accounts, args.codes)
        server = subprocess.Popen([sys.executable, "-m", "passport", "serve", "--host", "127.0.0.1", "--port",
                                   str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        httpx.get(f"{base}/oauth/jwks")  # signing keys made and cached before the clock starts
        print(f"passport {'PostgreSQL' if args.postgres else 'SQLite'}, 1 server process, "
              f"{args.concurrency} clients, {args.seconds:g} s a phase")
        results = asyncio.run(run(args, base, server.pid, app, codes))
        out = BENCH_DIR / "results"
        out.mkdir(exist_ok=True)
        path = out / f"oidc-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        path.write_text(json.dumps({"database": "postgresql" if args.postgres else "sqlite",
                                    "concurrency": args.concurrency, "seconds": args.seconds,
                                    "cpus": os.cpu_count(), "results": results}, indent=2))
        print(f"written to {path}")
        return 0
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
