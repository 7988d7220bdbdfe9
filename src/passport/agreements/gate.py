"""The re-consent gate's rules (COMPLIANCE A3, API.md "Agreements and consent"): which paths stay open
while an account has a version to accept. ``guards.py`` applies them to every authenticated API
request and every signed-in page; with no re-consent version in force and no continued-use
acceptance due, ``service.gate_is_clear`` answers from the process's versions cache without I/O."""

from __future__ import annotations

import re

from passport import errors

# What a user who has not accepted yet may still do: read, accept, log out, take their data (after the
# step-up it needs), apply for cancellation (with the code it needs) and withdraw optional consent (A3, A4).
_API_OPEN = ("/api/v1/me/consents", "/api/v1/me/purposes", "/api/v1/me/cancellation", "/api/v1/me/export",
             "/api/v1/me/verification-codes", "/api/v1/me/step-up", "/api/v1/agreements")
_PAGE_OPEN = ("/consent", "/agreements", "/account/consents", "/account/cancellation", "/account/export",
              "/account/step-up", "/notices/unsubscribe", "/announcements", "/login", "/logout", "/static", "/admin",
              "/dev")
INTERSTITIAL = "/consent"
# Ending a session (a stolen one, say) never waits for acceptance: the pages of DELETE /sessions/….
_PAGE_REVOKE = re.compile(r"/account/(?:sessions|devices)/[^/]+/revoke|/account/devices/revoke-others")
# The public page of an organisation (GET /organizations/{id} is public in the API too).
_PAGE_ORGANIZATION = re.compile(r"/organizations/(?!new$)[^/]+")


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def api_open(method: str, path: str) -> bool:
    if path == "/api/v1/me":
        return method == "GET"
    if path.startswith("/api/v1/sessions") and method == "DELETE":
        return True
    return _under(path, _API_OPEN)


def page_open(path: str, method: str = "GET") -> bool:
    if method == "POST" and _PAGE_REVOKE.fullmatch(path):
        return True
    if method in ("GET", "HEAD") and _PAGE_ORGANIZATION.fullmatch(path):
        return True
    return _under(path, _PAGE_OPEN)


def consent_required(pending: list[dict]) -> errors.DomainError:
    return errors.DomainError("consent_required", "Please read and accept the updated agreements first.", 403,
                              extra={"pending": pending})
