from __future__ import annotations

import pytest
from email_validator.validate_email import CASE_INSENSITIVE_MAILBOX_NAMES
from hypothesis import assume, given
from hypothesis import strategies as st

from passport.identity.email import InvalidEmail, email_key, is_email, mask_email, normalize_email

LOCAL_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+"
labels = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=20)
locals_ = st.text(LOCAL_ALPHABET, min_size=1, max_size=30)
domains = st.builds(lambda parts, tld: ".".join([*parts, tld]), st.lists(labels, min_size=1, max_size=3),
                    st.sampled_from(["com", "cn", "org", "net"]))


def _address_of_length(length: int) -> str:
    local = "a" * 64
    remaining = length - len(local) - 1 - len(".com")
    labels_ = []
    while remaining > 0:
        size = min(62, remaining)
        labels_.append("b" * size)
        remaining -= size + 1
    address = f"{local}@{'.'.join(labels_)}.com"
    assert len(address) == length
    return address


@pytest.mark.parametrize(("raw", "expected"), [
    ("alice@example.com", "alice@example.com"),
    ("Alice@Example.COM", "Alice@example.com"),
    ("  bob@example.org\t", "bob@example.org"),
    ("first.last+tag@Sub.Example.co.UK", "first.last+tag@sub.example.co.uk"),
    ("user@BÜCHER.de", "user@bücher.de"),
    ("用户@例子.广告", "用户@例子.广告"),
])
def test_valid_addresses_normalise_with_the_domain_lower_cased(raw, expected):
    assert normalize_email(raw) == expected


@given(locals_, domains)
def test_domain_is_lower_cased_and_local_part_keeps_its_case(local, domain):
    assume(local.lower() not in CASE_INSENSITIVE_MAILBOX_NAMES)  # role mailboxes: next test
    normalized = normalize_email(f"{local}@{domain.upper()}")
    assert normalized == f"{local}@{domain}"
    assert normalize_email(normalized) == normalized


@pytest.mark.parametrize("role", sorted(CASE_INSENSITIVE_MAILBOX_NAMES))
def test_rfc_2142_role_mailboxes_are_lower_cased(role):
    """``INFO@``, ``Postmaster@``: RFC 2142 says these are case-insensitive, so they are stored lower-cased."""
    assert normalize_email(f"{role.upper()}@Example.com") == f"{role}@example.com"


@pytest.mark.parametrize("raw", [
    "", "plainaddress", "@example.com", "alice@", "alice@@example.com", "alice bob@example.com",
    "alice@example..com", "alice..bob@example.com", ".alice@example.com", "alice@-example.com",
    "alice@exa_mple.com", "alice@localhost", "alice@example", "alice@exam ple.com", "<alice@example.com>",
])
def test_invalid_addresses_raise_invalid_email(raw):
    with pytest.raises(InvalidEmail):
        normalize_email(raw)
    assert not is_email(raw)


@pytest.mark.parametrize("raw", [None, 42, b"alice@example.com"])
def test_non_string_input_raises_invalid_email(raw):
    with pytest.raises(InvalidEmail):
        normalize_email(raw)


def test_an_address_of_254_characters_is_accepted():
    address = _address_of_length(254)
    assert normalize_email(address) == address


@pytest.mark.parametrize("length", [255, 300, 10_000])
def test_addresses_longer_than_254_characters_are_refused(length):
    with pytest.raises(InvalidEmail, match="254"):
        normalize_email(_address_of_length(length))


@given(locals_, domains)
def test_email_key_is_case_insensitive(local, domain):
    address = f"{local}@{domain}"
    assert email_key(address) == email_key(address.upper()) == email_key(address.lower())
    assert email_key(address) == address.lower()


def test_email_key_of_differently_typed_addresses_matches_after_normalisation():
    assert email_key(normalize_email("Alice@Example.COM")) == email_key(normalize_email("ALICE@example.com"))
    assert email_key("alice@example.com") != email_key("alice2@example.com")


def test_mask_email_example_from_the_api():
    assert mask_email("alice@example.com") == "a***@example.com"


@given(locals_, domains)
def test_mask_email_shows_only_the_first_character_of_the_local_part(local, domain):
    masked = mask_email(f"{local}@{domain}")
    assert masked == f"{local[0]}***@{domain}"
    if len(local) > 1:
        assert f"{local}@" not in masked


@pytest.mark.parametrize("raw", ["no-at-sign", "@example.com", ""])
def test_mask_email_hides_everything_without_a_local_part(raw):
    assert mask_email(raw) == "***"
