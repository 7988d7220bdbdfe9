"""Fixtures of the reports and appeals tests (issue 18); helpers are in reports_testing.py."""

from __future__ import annotations

import pytest

from passport_testing import make_staff, register_account


@pytest.fixture()
def reviewers(rt):
    return make_staff(rt, "reviewer"), make_staff(rt, "reviewer")


@pytest.fixture()
def two_users(client, rt):
    return register_account(client, rt, nickname="举报人"), register_account(client, rt, nickname="坏名字")
