"""Helpers of the reports and appeals tests (issue 18)."""

from __future__ import annotations

from passport_testing import bearer

ADMIN = "/api/v1/admin"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)


def file_report(client, token: str, subject_id: str, *, subject_type: str = "account", category: str = "insult",
                description: str = "昵称侮辱他人", field: str | None = "nickname", files=None, **extra):
    data = {"subject_type": subject_type, "subject_id": subject_id, "category": category,
            "description": description} | ({"field": field} if field else {}) | extra
    return client.post("/api/v1/reports", data=data, files=files or None, headers=bearer(token))


def inbox(client, token: str) -> list[dict]:
    answer = client.get("/api/v1/me/messages", params={"per_page": 100}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def claim(client, staff: dict, review_id: str):
    return client.post(f"{ADMIN}/reviews/{review_id}/claim", headers=staff["headers"])


def decide(client, staff: dict, review_id: str, **body):
    return client.post(f"{ADMIN}/reports/{review_id}/decision", json=body, headers=staff["headers"])


def decide_appeal(client, staff: dict, review_id: str, **body):
    return client.post(f"{ADMIN}/appeals/{review_id}/decision", json=body, headers=staff["headers"])


def case_of(client, staff: dict, subject_id: str) -> dict:
    listed = client.get(f"{ADMIN}/reports", headers=staff["headers"])
    assert listed.status_code == 200, listed.text
    return next(item for item in listed.json()["items"] if item["subject_id"] == subject_id)
