"""Shared fixtures; the helpers they use live in passport_testing.py."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from openapi_contract import AnswerRecorder, undocumented
from passport_testing import free_port, make_runtime, make_settings, publish_agreements

# CI replays the same examples every run (a red build names a real regression); local runs explore.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("passport-data")


@pytest.fixture(scope="session")
def rt(data_dir):
    runtime = make_runtime(make_settings(data_dir))
    publish_agreements(runtime)
    yield runtime
    runtime.close()


@pytest.fixture(autouse=True)
def _fresh_limits_and_clock(request):
    yield
    if "rt" in request.fixturenames:
        runtime = request.getfixturevalue("rt")
        runtime.clock.offset = type(runtime.clock.offset)()
        runtime.limiter.reset()


# Every answer of the suite's app, checked against its OpenAPI document when the run ends.
ANSWERS: set = set()
_APPS: list = []


@pytest.fixture(scope="session")
def app(rt):
    from passport.app import create_app

    application = create_app(runtime=rt)
    application.add_middleware(AnswerRecorder, answers=ANSWERS)
    _APPS.append(application)
    return application


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when the API answered something its OpenAPI document does not list (issue 16)."""
    if not _APPS or not ANSWERS:
        return
    found = undocumented(_APPS[0], ANSWERS)
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", f"{len(found)} answers not in the OpenAPI document", red=True)
            for line in found:
                reporter.write_line(line)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture()
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def live_server(app):
    """The app served by uvicorn on a real socket, for concurrency and browser tests."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


