"""Enumeration timing: do known and unknown numbers take as long to answer?

For ``POST /api/v1/verification-codes`` (purpose reset_password) and ``POST /api/v1/password-resets``
(a wrong SMS code, and a wrong recovery key), sends ``--requests`` requests for numbers that have an
account and as many for numbers that do not, alternating one known, one unknown so that drift hits
both alike, one at a time, and prints the median latency of each and their difference. Target: the
difference is below 5 ms. Run by ``make bench`` after bench/login.py; talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from login import (
    HIGH_LIMIT,
    RESULTS_DIR,
    RawClient,
    Server,
    bench_env,
    free_port,
    phone_of,
    run_cli,
    seed_accounts,
)

TARGET_MS = 5.0
WRONG_KEY = "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE"


def unknown_phone(i: int) -> str:
    return f"137{i:08d}"  # never seeded: seed_accounts uses 139…


async def timed(client: RawClient, path: str, body: dict) -> tuple[float, int, bytes]:
    raw = json.dumps(body).encode()
    started = time.perf_counter()
    status, payload = await client.request("POST", path, raw)
    return (time.perf_counter() - started) * 1000, status, payload


async def measure(port: int, requests: int, path: str, body_for) -> dict:
    client = RawClient(port)
    known_ms, unknown_ms, answers = [], [], {"known": set(), "unknown": set()}
    try:
        for i in range(requests):
            for kind, phone, sink in (("known", phone_of(i), known_ms), ("unknown", unknown_phone(i), unknown_ms)):
                ms, status, payload = await timed(client, path, body_for(phone))
                sink.append(ms)
                answers[kind].add((status, payload))
    finally:
        await client.close()
    known, unknown = statistics.median(known_ms), statistics.median(unknown_ms)
    return {
        "requests_each": requests,
        "median_ms_known": round(known, 3),
        "median_ms_unknown": round(unknown, 3),
        "difference_ms": round(abs(known - unknown), 3),
        "identical_answers": answers["known"] == answers["unknown"] and len(answers["known"]) == 1,
        "statuses": sorted({status for status, _ in answers["known"] | answers["unknown"]}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per kind of number (default 200)")
    args = parser.parse_args(argv)

    data_dir = Path(tempfile.mkdtemp(prefix="passport-enum-"))
    env = bench_env(data_dir)
    env.update({"PASSPORT_CODE_RESEND_SECONDS": "0", "PASSPORT_RECOVERY_PER_IP_HOUR": HIGH_LIMIT,
                "PASSPORT_RECOVERY_KEY_PER_PHONE_HOUR": HIGH_LIMIT})
    os.environ.update(env)
    run_cli(env, "migrate")
    run_cli(env, "agreements", "seed")
    seed_accounts(args.requests, recovery_key=WRONG_KEY.replace("A", "Z"))
    port = free_port()
    server = Server(env, port, 1, data_dir / "server.log")
    results: dict = {"benchmark": "passport-enumeration", "started_at": datetime.now(UTC).isoformat()}
    try:
        server.wait_healthy(60)
        new_password = "Zx8#unrelated-Heron"
        cases = {
            "verification-codes (reset_password)": (
                "/api/v1/verification-codes", lambda p: {"to": p, "purpose": "reset_password"}),
            "password-resets (wrong SMS code)": (
                "/api/v1/password-resets", lambda p: {"phone": p, "code": "000000", "new_password": new_password}),
            "password-resets (wrong recovery key)": (
                "/api/v1/password-resets",
                lambda p: {"phone": p, "recovery_key": WRONG_KEY, "new_password": new_password}),
        }
        for name, (path, body_for) in cases.items():
            results[name] = asyncio.run(measure(port, args.requests, path, body_for))
    finally:
        server.stop()

    print(f"\npassport enumeration timing  requests={args.requests} per kind, sequential, 1 worker\n")
    print(f"{'endpoint':40} {'known ms':>9} {'unknown ms':>11} {'diff ms':>8}  same answer  verdict")
    worst = 0.0
    for name, r in results.items():
        if not isinstance(r, dict):
            continue
        worst = max(worst, r["difference_ms"])
        verdict = "ok" if r["difference_ms"] < TARGET_MS and r["identical_answers"] else "MISSED"
        print(f"{name:40} {r['median_ms_known']:9.2f} {r['median_ms_unknown']:11.2f} {r['difference_ms']:8.2f}"
              f"  {str(r['identical_answers']):11}  {verdict}")
    print(f"\nlargest median difference: {worst:.2f} ms (target < {TARGET_MS} ms)")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"enumeration-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"results: {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
