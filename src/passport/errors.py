"""Domain errors with stable codes. Handlers map them to problem+json or a page message.

``title`` is an English msgid, translated per request (zh-CN by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FieldError:
    field: str
    code: str
    message: str
    category: str | None = None  # what a refused value is about (account-information review)


@dataclass
class DomainError(Exception):
    code: str
    title: str
    status: int = 400
    errors: list[FieldError] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.title}"


def invalid(code: str, title: str, field_name: str | None = None, status: int = 422) -> DomainError:
    errors = [FieldError(field_name, code, title)] if field_name else []
    return DomainError(code, title, status, errors)


def invalid_code() -> DomainError:
    return invalid("invalid_code", "The verification code is wrong or has expired.", "code")


def invalid_credentials() -> DomainError:
    return DomainError("invalid_credentials", "Wrong login or password.", 401)


def not_authenticated() -> DomainError:
    return DomainError("not_authenticated", "Please log in first.", 401)


def rate_limited(retry_after: int) -> DomainError:
    return DomainError(
        "rate_limited",
        "Too many requests. Please try again later.",
        429,
        extra={"retry_after": retry_after},
        headers={"Retry-After": str(max(1, retry_after))},
    )


def service_unavailable(retry_after: int = 5) -> DomainError:
    """A dependency (the database, Redis) is down or too slow: 503 with ``Retry-After``, never 500."""
    return DomainError(
        "service_unavailable",
        "The service is temporarily unavailable. Please try again later.",
        503,
        extra={"retry_after": max(1, retry_after)},
        headers={"Retry-After": str(max(1, retry_after))},
    )


def not_found(what: str = "resource") -> DomainError:
    return DomainError("not_found", "Not found.", 404, extra={"resource": what})
