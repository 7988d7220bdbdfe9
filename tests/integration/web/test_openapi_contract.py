"""The OpenAPI document says what the API answers (issue 16): problem+json with its codes for every error
status, security per operation, no FastAPI HTTPValidationError; and the suite's check of it works."""

from __future__ import annotations

import json

import pytest

from openapi_contract import Answer, undocumented

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def document(app) -> dict:
    return app.openapi()


def _operations(document: dict):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def _codes(operation: dict, status: int) -> list[str]:
    schema = operation["responses"][str(status)]["content"][PROBLEM]["schema"]
    return schema["allOf"][1]["properties"]["code"]["enum"]


def test_every_error_answer_is_a_problem_and_fastapis_validation_error_is_gone(document):
    assert "HTTPValidationError" not in json.dumps(document)
    assert {"Problem", "ProblemFieldError"} <= set(document["components"]["schemas"])
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status.isdigit() and int(status) >= 400 and path.startswith("/api/"):
                assert list(response["content"]) == [PROBLEM], (method, path, status)
                assert _codes(operation, int(status)), (method, path, status)
        if path.startswith("/api/"):
            assert {"maintenance", "service_unavailable"} <= set(_codes(operation, 503)), (method, path)


def test_statuses_are_derived_from_the_route(document):
    me = document["paths"]["/api/v1/me"]
    assert _codes(me["get"], 401) == ["not_authenticated"]
    assert _codes(me["get"], 403) == ["consent_required"]  # a safe method needs no CSRF token
    assert "422" not in me["get"]["responses"] and "429" not in me["get"]["responses"]
    assert "csrf_failed" in _codes(me["patch"], 403)
    assert {"400", "413", "422", "429"} <= set(me["patch"]["responses"])
    session = document["paths"]["/api/v1/sessions/{session_id}"]["delete"]
    assert _codes(session, 404) == ["not_found"]
    staff = document["paths"]["/api/v1/admin/staff"]["post"]
    assert set(_codes(staff, 403)) == {"forbidden", "csrf_failed"}
    assert "`staff.manage`" in staff["description"]


def test_codes_only_the_handler_knows_are_listed(document):
    register = document["paths"]["/api/v1/accounts"]["post"]
    assert _codes(register, 409) == ["phone_taken"]
    assert {"validation_failed", "invalid_code", "weak_password", "agreements_required"} <= set(_codes(register, 422))
    login = document["paths"]["/api/v1/sessions"]["post"]
    assert set(_codes(login, 401)) == {"invalid_credentials", "mfa_required"}
    assert "Retry-After" in login["responses"]["429"]["headers"]


def test_security_schemes_and_each_operations_requirement(document):
    assert set(document["components"]["securitySchemes"]) == {"bearer", "session_cookie", "staff_bearer",
                                                               "staff_cookie", "csrf"}
    assert document["paths"]["/api/v1/me"]["get"]["security"] == [{"bearer": []}, {"session_cookie": []}]
    assert document["paths"]["/api/v1/me"]["patch"]["security"] == [{"bearer": []},
                                                                     {"session_cookie": [], "csrf": []}]
    assert document["paths"]["/api/v1/admin/dashboard"]["get"]["security"] == [{"staff_bearer": []},
                                                                                {"staff_cookie": []}]
    assert "security" not in document["paths"]["/api/v1/agreements"]["get"]
    assert "security" not in document["paths"]["/api/v1/sessions"]["post"]


def test_the_main_operations_carry_examples(document):
    register = document["paths"]["/api/v1/accounts"]["post"]
    assert "register" in register["requestBody"]["content"]["application/json"]["examples"]
    assert "registered" in register["responses"]["201"]["content"]["application/json"]["examples"]
    login = document["paths"]["/api/v1/sessions"]["post"]
    examples = login["responses"]["401"]["content"][PROBLEM]["examples"]
    assert examples["mfa_required"]["value"]["code"] == "mfa_required"
    me = document["paths"]["/api/v1/me"]["get"]
    assert me["responses"]["200"]["content"]["application/json"]["examples"]["account"]["value"]["phone"] == \
        "138****5678"


def test_an_unreadable_body_is_a_problem_with_a_stable_code(client):
    answer = client.post("/api/v1/sessions", content=b"\x11*u\xff\xfe\xfd",
                         headers={"Content-Type": "application/json", "Accept-Language": "en"})
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith(PROBLEM)
    assert answer.json()["code"] == "malformed_body"
    assert answer.json()["title"] == "The request body could not be read."


def test_the_suites_check_names_what_the_document_does_not_list(app):
    def answer(status: int, code: str | None, media_type: str = PROBLEM, path: str = "/api/v1/sessions") -> Answer:
        return Answer("POST", path, status, media_type, code, True)

    listed = {answer(401, "invalid_credentials"), answer(201, None, "application/json"),
              answer(500, "internal_error"), answer(404, "not_found", path="/api/v1/no-such-thing")}
    assert undocumented(app, listed) == []
    found = undocumented(app, {answer(401, "session_expired"), answer(409, "phone_taken"),
                               answer(201, None, "text/html")})
    assert len(found) == 3
    assert any("'session_expired' is not documented" in line for line in found)
    assert any("status 409" in line for line in found)
    assert any("text/html" in line for line in found)
