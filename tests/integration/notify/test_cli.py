"""Operators' commands: schedule, list and cancel maintenance; outbox status and retry-failed."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from passport.cli import app as cli_app
from passport.notify import board, outbox
from passport.notify.models import MaintenanceWindow, OutboxNotice
from passport_testing import register_account


@pytest.fixture()
def cli(rt, monkeypatch):
    monkeypatch.setenv("PASSPORT_ENV", "test")
    monkeypatch.setenv("PASSPORT_DATABASE_URL", rt.settings.resolved_database_url)
    monkeypatch.setenv("PASSPORT_DATA_DIR", str(rt.settings.data_dir))
    if rt.settings.redis_url:
        monkeypatch.setenv("PASSPORT_REDIS_URL", rt.settings.redis_url)
    # The CLI configures logging for its process; here that would point structlog at CliRunner's stdout.
    monkeypatch.setattr("passport.logs.configure_logging", lambda *args, **kwargs: None)
    yield lambda *args: CliRunner().invoke(cli_app, list(args))
    with rt.db.write() as db:
        db.execute(update(MaintenanceWindow).where(MaintenanceWindow.cancelled_at.is_(None))
                   .values(cancelled_at=rt.clock.now()))
    board.forget_cache(rt)


def test_schedule_list_and_cancel_maintenance(cli, rt):
    start = (rt.clock.now() + timedelta(days=2, hours=8)).strftime("%Y-%m-%dT%H:%M")  # Beijing time
    end = (rt.clock.now() + timedelta(days=2, hours=9)).strftime("%Y-%m-%dT%H:%M")
    done = cli("maintenance", "schedule", "--start", start, "--end", end, "--message", "网络设备升级")
    assert done.exit_code == 0, done.output
    window = json.loads(done.output)
    assert window["message"] == "网络设备升级" and window["starts_at"].endswith("Z")
    listed = [json.loads(line) for line in cli("maintenance", "list").output.splitlines()]
    assert window["id"] in [w["id"] for w in listed]
    assert cli("maintenance", "cancel", window["id"]).exit_code == 0
    again = cli("maintenance", "cancel", window["id"])
    assert again.exit_code == 2 and "maintenance_over" in again.output
    backwards = cli("maintenance", "schedule", "--start", end, "--end", start, "--message", "x")
    assert backwards.exit_code == 2 and "invalid_period" in backwards.output
    assert cli("maintenance", "schedule", "--start", "soon", "--end", end, "--message", "x").exit_code != 0


def test_status_and_retry_failed(cli, rt, client):
    user = register_account(client, rt)
    with rt.db.write() as db:
        outbox.notify_account(rt, db, account_id=user["account"]["id"], template="notice_locked",
                               params={"minutes": 15})
        db.execute(update(OutboxNotice).where(OutboxNotice.account_id == user["account"]["id"])
                   .values(status="failed", attempts=8, last_error="isv.BUSINESS_LIMIT_CONTROL"))
    status = cli("notices", "status", "--failed")
    assert status.exit_code == 0 and json.loads(status.output.splitlines()[0])["failed"] >= 1
    assert user["phone"] not in status.output and "isv.BUSINESS_LIMIT_CONTROL" in status.output
    retried = cli("notices", "retry-failed")
    assert retried.exit_code == 0 and "requeued" in retried.output
    with rt.db.read() as db:
        row = db.query(OutboxNotice).filter(OutboxNotice.account_id == user["account"]["id"]).one()
        assert row.status == "pending" and row.attempts == 0
