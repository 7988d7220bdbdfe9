"""Which requests the re-consent gate leaves open (API.md "Agreements and consent"), and the
version summary it decides from without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from passport.agreements.gate import api_open, page_open
from passport.agreements.service import Version, _pending, _summarise


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/me"), ("GET", "/api/v1/me/consents"), ("POST", "/api/v1/me/consents"),
    ("GET", "/api/v1/agreements"), ("GET", "/api/v1/agreements/user-agreement/2.0"),
    ("DELETE", "/api/v1/sessions/current"), ("DELETE", "/api/v1/sessions/abc"),
    ("POST", "/api/v1/me/cancellation"), ("GET", "/api/v1/me/cancellation"), ("DELETE", "/api/v1/me/cancellation"),
    ("GET", "/api/v1/me/export"), ("PUT", "/api/v1/me/purposes/marketing"),
    ("POST", "/api/v1/me/verification-codes"),
])
def test_open_while_consent_is_pending(method, path):
    assert api_open(method, path)


@pytest.mark.parametrize(("method", "path"), [
    ("PATCH", "/api/v1/me"), ("GET", "/api/v1/sessions"), ("DELETE", "/api/v1/me/totp"),
    ("POST", "/api/v1/me/real-name"), ("GET", "/api/v1/me/activity"), ("GET", "/api/v1/me/consentsX"),
    ("GET", "/api/v1/me/exports"),
])
def test_gated_while_consent_is_pending(method, path):
    assert not api_open(method, path)


def test_pages_open_while_consent_is_pending():
    for path in ("/consent", "/agreements/user-agreement", "/account/consents", "/account/cancellation",
                 "/notices/unsubscribe", "/login", "/logout", "/static/app.css"):
        assert page_open(path), path
    for path in ("/", "/account", "/account/password", "/consentX"):
        assert not page_open(path), path


def test_ending_a_session_and_public_organisation_pages_stay_open():
    for path in ("/account/devices/abc/revoke", "/account/sessions/abc/revoke", "/account/devices/revoke-others"):
        assert page_open(path, "POST"), path
    assert page_open("/organizations/org1", "GET")
    assert not page_open("/organizations/new", "GET")
    assert not page_open("/organizations/org1", "POST")
    assert not page_open("/organizations/org1/administrators", "POST")
    assert not page_open("/account/devices", "GET")
    assert not page_open("/account/devices/abc/revoke/x", "POST")


NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def v(kind: str, version: str, hours: float, reconsent: bool = False) -> Version:
    return Version(kind, version, kind, "0" * 64, NOW + timedelta(hours=hours), reconsent)


def test_the_summary_names_what_is_in_force_and_until_when():
    versions = [v("user-agreement", "3.0", 5, True), v("user-agreement", "2.0", -1, True),
                v("user-agreement", "1.0", -100), v("privacy-policy", "1.1", -2), v("privacy-policy", "1.0", -50),
                v("other", "1.0", -3)]
    summary = _summarise(versions, NOW)
    assert [x.version for x in summary.reconsent] == ["2.0"]
    assert [(x.kind, x.version) for x in summary.successors] == [("privacy-policy", "1.1")]
    assert summary.valid_from == NOW - timedelta(hours=1)
    assert summary.valid_until == NOW + timedelta(hours=5)


def test_nothing_in_force_yet():
    summary = _summarise([v("user-agreement", "1.0", 1, True)], NOW)
    assert summary.reconsent == () and summary.successors == () and summary.valid_from is None


def test_a_later_version_without_reconsent_does_not_excuse_the_one_before():
    versions = [v("user-agreement", "2.1", -1), v("user-agreement", "2.0", -2, True), v("user-agreement", "1.0", -100),
                v("privacy-policy", "1.1", -3), v("privacy-policy", "1.0", -100)]
    summary = _summarise(versions, NOW)
    assert summary.reconsent == ()  # the version in force asks for nothing itself
    assert _pending(summary, {("user-agreement", "1.0"), ("privacy-policy", "1.0")}) == [
        {"kind": "user-agreement", "version": "2.1"}]
    assert _pending(summary, {("user-agreement", "1.0"), ("user-agreement", "2.0")}) == []
    assert _pending(summary, {("user-agreement", "2.1")}) == []
    assert _pending(summary, set()) == [{"kind": "user-agreement", "version": "2.1"}]


def test_a_reconsent_version_before_the_accepted_one_asks_nothing():
    versions = [v("user-agreement", "3.0", -1), v("user-agreement", "2.5", -2), v("user-agreement", "2.0", -3, True)]
    assert _pending(_summarise(versions, NOW), {("user-agreement", "2.5")}) == []
