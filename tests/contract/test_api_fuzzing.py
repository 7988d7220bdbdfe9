"""Schemathesis against a live server (issue 16): ``passport serve`` in a subprocess on a free port, on
SQLite, or on PostgreSQL + Redis when PASSPORT_TEST_DATABASE_URL / PASSPORT_TEST_REDIS_URL are set (a
database of its own, dropped afterwards), with an account's bearer token. Every operation of the
served document gets generated requests (valid and invalid); any server error, undocumented status
or media type, answer that does not fit its schema, or invalid input that is accepted fails the test.

The budget is fixed (seed, examples per operation) so CI replays the same cases: about two minutes a
database. ``PASSPORT_FUZZ_EXAMPLES`` and ``PASSPORT_FUZZ_SEED`` change it for a longer local run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from passport_testing import DATABASE_URL, REDIS_URL, STRONG_PASSWORD, free_port, new_phone

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "negative_data_rejection")
SEED = int(os.environ.get("PASSPORT_FUZZ_SEED", "16"))
EXAMPLES = int(os.environ.get("PASSPORT_FUZZ_EXAMPLES", "5"))
# Operations that would end the run's own session or account: the token must stay good to the end.
# Each ends the fuzzer's own session; DELETE /sessions/{session_id} too when a generated id is "current".
EXCLUDED = ("DELETE /api/v1/sessions/current", "DELETE /api/v1/sessions/{session_id}", "POST /api/v1/me/freeze",
            "PUT /api/v1/me/password")


@pytest.fixture()
def database(tmp_path):
    """The server's database: a fresh PostgreSQL database beside the test one, or SQLite in tmp_path."""
    if not DATABASE_URL:
        yield None
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"fuzz_{uuid.uuid4().hex[:10]}"
    admin = create_engine(DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture()
def server(tmp_path, database):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSPORT_")}
    env.update(PASSPORT_ENV="test", PASSPORT_DATA_DIR=str(tmp_path), PASSPORT_LOG_JSON="true",
               PASSPORT_LOG_LEVEL="WARNING", PYTHONPATH=os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]),
               # Room for the fuzzer: limits still answer 429 (documented), just not after a few cases.
               PASSPORT_CODE_PER_IP_HOUR="100000", PASSPORT_LOGIN_PER_IP_MINUTE="100000",
               PASSPORT_REGISTER_PER_IP_HOUR="100000")
    if database:
        env["PASSPORT_DATABASE_URL"] = database
    if REDIS_URL:
        env["PASSPORT_REDIS_URL"] = REDIS_URL
    passport = [sys.executable, "-m", "passport"]
    for command in (["migrate"], ["agreements", "seed"]):
        subprocess.run(passport + command, env=env, cwd=tmp_path, check=True, capture_output=True, timeout=120)
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(passport + ["serve", "--port", str(port)], env=env, cwd=tmp_path, stdout=log,
                               stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process)
        yield base, tmp_path
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def _wait_ready(base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"passport serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("passport serve did not become ready")


def _register(base: str, data_dir: Path) -> str:
    """A new account through the API (code from the dev outbox); its session token."""
    phone = new_phone()
    with httpx.Client(base_url=f"{base}/api/v1", timeout=30) as api:
        api.post("/verification-codes", json={"channel": "sms", "to": phone, "purpose": "register"}).raise_for_status()
        sent = [json.loads(line) for line in (data_dir / "outbox" / "sms.jsonl").read_text().splitlines()]
        code = next(m["code"] for m in reversed(sent) if m["purpose"] == "register")
        versions = {a["kind"]: a["version"] for a in api.get("/agreements").json()}
        answer = api.post("/accounts", json={"phone": phone, "code": code, "password": STRONG_PASSWORD,
                                             "nickname": "fuzz", "agreements": versions})
        answer.raise_for_status()
        return answer.json()["session"]["token"]


def test_the_api_answers_as_its_openapi_document_says(server):
    base, data_dir = server
    token = _register(base, data_dir)
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{base}/api/v1/openapi.json",
               "--checks", ",".join(CHECKS), "--seed", str(SEED), "--max-examples", str(EXAMPLES),
               "--generation-database", "none", "--workers", "1",
               "--phases", "examples,coverage,fuzzing", "--header", f"Authorization: Bearer {token}",
               "--request-timeout", "30", "--no-color", "--output-truncate", "true", "--warnings", "off",
               "--suppress-health-check", "all"]
    for operation in EXCLUDED:
        command += ["--exclude-name", operation]
    run = subprocess.run(command, cwd=data_dir, capture_output=True, text=True, timeout=900)
    report = run.stdout + run.stderr
    print(report[-20_000:])
    assert run.returncode == 0, report[-20_000:]
    # The session lived through the run: the signed-in operations were fuzzed, not just refused with 401.
    assert httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
