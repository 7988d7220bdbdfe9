"""TOTP code checks (RFC 6238) and the mfa_token parser: pure functions, no services."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pyotp
from hypothesis import given
from hypothesis import strategies as st

from passport.credentials.totp import check_code, new_secret, time_step
from passport.sessions.service import MFA_METHODS, read_mfa_token

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = datetime(2026, 3, 4, 5, 6, 15, tzinfo=UTC)  # 15 s into its 30-second step


def code(at: datetime, secret: str = SECRET) -> str:
    return pyotp.TOTP(secret).at(at)


def test_new_secrets_are_160_random_bits_in_base32():
    secrets_ = {new_secret() for _ in range(200)}
    assert len(secrets_) == 200
    for secret in secrets_:
        assert len(secret) == 32 and len(base64.b32decode(secret)) == 20


def test_rfc_6238_reference_value():
    # RFC 6238 Appendix B, SHA-1, T = 59 s: 94287082 (8 digits); its last 6 digits for 6-digit codes.
    rfc_secret = base64.b32encode(b"12345678901234567890").decode()
    at = datetime.fromtimestamp(59, UTC)
    assert check_code(rfc_secret, "287082", at, None).step == 1


def test_the_current_step_and_one_either_side_are_accepted():
    current = time_step(NOW)
    for shift, step in ((-30, current - 1), (0, current), (30, current + 1)):
        assert check_code(SECRET, code(NOW + timedelta(seconds=shift)), NOW, None).step == step
    for shift in (-60, 60, -3600):
        result = check_code(SECRET, code(NOW + timedelta(seconds=shift)), NOW, None)
        assert not result.ok and not result.replayed


def test_a_step_at_or_before_the_last_accepted_one_is_a_replay():
    current = time_step(NOW)
    assert check_code(SECRET, code(NOW), NOW, current).replayed
    assert check_code(SECRET, code(NOW - timedelta(seconds=30)), NOW, current).replayed
    assert check_code(SECRET, code(NOW), NOW, current - 1).step == current
    later = check_code(SECRET, code(NOW + timedelta(seconds=30)), NOW, current)
    assert later.step == current + 1 and not later.replayed


def test_spaces_are_ignored_and_anything_else_is_wrong():
    right = code(NOW)
    assert check_code(SECRET, f" {right[:3]} {right[3:]} ", NOW, None).ok
    fullwidth = right.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    for typed in (right[:5], right + "0", "", None, fullwidth):
        assert not check_code(SECRET, typed, NOW, None).ok


@given(st.one_of(st.none(), st.text(max_size=20)))
def test_check_code_never_raises(typed):
    result = check_code(SECRET, typed, NOW, None)
    assert result.ok == (typed is not None and "".join(typed.split()) in {
        code(NOW + timedelta(seconds=s)) for s in (-30, 0, 30)})


def test_mfa_token_parser_reads_its_own_shape():
    claim = read_mfa_token("a" * 32 + ".1772600000.password.00ff00ff00ff00ff.bWFj")
    assert (claim.account_id, claim.expires, claim.method, claim.nonce, claim.mac) == (
        "a" * 32, 1772600000, "password", "00ff00ff00ff00ff", "bWFj")
    for bad in ("", "a.b.c.d", "a.1.password.n.m.x", "a.x1.password.n.m", "a.1.totp.n.m", "a.-1.password.n.m",
                "a.1.password.n." + "m" * 300):
        assert read_mfa_token(bad) is None, bad


@given(st.one_of(st.none(), st.integers(), st.text(max_size=300)))
def test_mfa_token_parser_never_raises(raw):
    claim = read_mfa_token(raw)
    assert claim is None or claim.method in MFA_METHODS
