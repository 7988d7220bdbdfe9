"""Issue 16: an unexpected exception answers a whole 500 problem (the server keeps the connection),
with the request id that the log line carries; the log has the exception's type and place, never its
message (SQL parameters, personal data) nor a traceback."""

from __future__ import annotations

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

SECRET = "13812345678 password=hunter2"


@pytest.fixture(scope="module")
def failing_client(rt):
    from passport.app import create_app

    app = create_app(runtime=rt)
    router = APIRouter()

    @router.get("/api/v1/test-boom")
    def boom():
        raise RuntimeError(SECRET)

    @router.get("/test-db-down")
    def db_down():
        raise OperationalError("SELECT * FROM accounts WHERE phone = %(p)s", {"p": SECRET}, ConnectionError())

    app.include_router(router)
    # raise_server_exceptions: an exception that escaped to the server would fail the request here.
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client


def test_an_unexpected_error_is_a_whole_500_with_a_request_id(failing_client):
    with capture_logs() as logs:
        answer = failing_client.get("/api/v1/test-boom")
    assert answer.status_code == 500
    body = answer.json()
    assert body["code"] == "internal_error" and SECRET not in answer.text
    assert answer.headers["x-request-id"] == body["request_id"]
    assert answer.headers.get("connection") != "close"
    logged = [e for e in logs if e["event"] == "http.unhandled"]
    assert len(logged) == 1
    assert logged[0]["error"] == "RuntimeError" and logged[0]["request_id"] == body["request_id"]
    assert SECRET not in repr(logs) and "Traceback" not in repr(logs)


def test_a_database_error_on_a_page_is_a_503_page_without_its_sql(failing_client):
    with capture_logs() as logs:
        answer = failing_client.get("/test-db-down", headers={"Accept": "text/html", "Accept-Language": "en"})
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert "temporarily unavailable" in answer.text and SECRET not in answer.text and "SELECT" not in answer.text
    assert SECRET not in repr(logs) and "SELECT" not in repr(logs)


def test_every_answer_names_its_request(client):
    first, second = client.get("/healthz"), client.get("/healthz")
    assert len(first.headers["x-request-id"]) == 16
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
