"""Email addresses: syntax check and normalisation (no DNS look-up on the request path)."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


class InvalidEmail(ValueError):
    pass


def normalize_email(raw: str) -> str:
    """Return the address with its domain lower-cased (IDNA), or raise InvalidEmail.

    The local part keeps its case as RFC 5321 allows, but look-ups use ``email_key``.
    """
    if not isinstance(raw, str) or len(raw) > 254:
        raise InvalidEmail("email must be at most 254 characters")
    try:
        result = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None
    return result.normalized


def email_key(email: str) -> str:
    """The form used for uniqueness and the blind index: case-insensitive as users expect."""
    return email.casefold()


def is_email(raw: str) -> bool:
    try:
        normalize_email(raw)
    except InvalidEmail:
        return False
    return True


def mask_email(email: str) -> str:
    """``alice@example.com`` → ``a***@example.com``."""
    local, _, domain = email.rpartition("@")
    if not local:
        return "***"
    return f"{local[0]}***@{domain}"
