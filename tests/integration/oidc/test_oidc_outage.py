"""Single sign-on while Redis or PostgreSQL is down (issue 16's rule): the token and userinfo
endpoints answer 503 ``service_unavailable`` with Retry-After, nothing is issued unchecked, and they
work again once the dependency is back, without a restart. Own servers on their own ports."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from oidc_testing import exchange, get_code, make_app, signed_in
from outage_testing import OwnPostgres, OwnRedis, have_postgres, have_redis
from passport_testing import make_settings, publish_agreements

pytestmark = pytest.mark.skipif(not (have_redis() and have_postgres()),
                                reason="needs redis-server and PostgreSQL's initdb/pg_ctl/postgres")


@pytest.fixture(scope="module")
def servers():
    redis, pg = OwnRedis(), OwnPostgres()
    redis.start()
    pg.start()
    yield redis, pg
    redis.stop()
    pg.remove()


@pytest.fixture(scope="module")
def outage_rt(servers, tmp_path_factory):
    from passport.db import migrate
    from passport.runtime import build_runtime

    redis, pg = servers
    settings = make_settings(tmp_path_factory.mktemp("sso-outage"), database_url=pg.url, redis_url=redis.url,
                             redis_timeout_seconds=0.5, database_connect_timeout_seconds=2, session_cache_seconds=0,
                             login_per_ip_minute=1000)
    migrate(settings.resolved_database_url)
    runtime = build_runtime(settings, pool_size=4, serving=True)
    publish_agreements(runtime)
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def outage_client(outage_rt):
    from passport.app import create_app

    with TestClient(create_app(runtime=outage_rt)) as test_client:
        yield test_client


def unavailable(answer) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "service_unavailable" and int(answer.headers["Retry-After"]) >= 1
    assert "Traceback" not in answer.text and "psycopg" not in answer.text


def test_token_and_userinfo_answer_503_while_a_dependency_is_down(servers, outage_client, outage_rt):
    redis, pg = servers
    app = make_app(outage_rt)
    signed_in(outage_client, outage_rt)
    code, _ = get_code(outage_client, app)
    spare, _ = get_code(outage_client, app)
    tokens = exchange(outage_client, app, code).json()
    userinfo = {"Authorization": f"Bearer {tokens['access_token']}"}

    redis.stop()
    try:
        unavailable(exchange(outage_client, app, spare))  # the per-IP limit cannot be checked: closed
    finally:
        redis.start()
    pg.stop()
    try:
        unavailable(exchange(outage_client, app, spare))
        unavailable(outage_client.get("/oauth/userinfo", headers=userinfo))
    finally:
        pg.start()
    assert exchange(outage_client, app, spare).status_code == 200  # the code was never spent
    assert outage_client.get("/oauth/userinfo", headers=userinfo).status_code == 200
