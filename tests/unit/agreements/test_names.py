"""Document kinds and versions: they are URL parts and ledger keys, so only plain slugs pass."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from passport import errors
from passport.agreements.service import check_names

kinds = st.builds(lambda first, rest: first + rest, st.sampled_from(string.ascii_lowercase),
                  st.text(string.ascii_lowercase + string.digits + "-", max_size=31))
versions = st.builds(lambda first, rest: first + rest, st.sampled_from(string.ascii_letters + string.digits),
                     st.text(string.ascii_letters + string.digits + ".-", max_size=31))


@given(kinds, versions)
def test_slugs_pass(kind, version):
    check_names(kind, version)


@given(st.text(max_size=40), versions)
def test_a_kind_is_refused_unless_it_is_a_slug(kind, version):
    slug = bool(kind) and len(kind) <= 32 and kind[0] in string.ascii_lowercase and set(kind) <= set(
        string.ascii_lowercase + string.digits + "-")
    if slug:
        check_names(kind, version)
    else:
        with pytest.raises(errors.DomainError) as caught:
            check_names(kind, version)
        assert caught.value.code == "invalid_kind"


@pytest.mark.parametrize("version", ["", ".1", "-1", "1 0", "1/0", "１.0", "1.0\n", "v" * 33, "../1"])
def test_bad_versions(version):
    with pytest.raises(errors.DomainError) as caught:
        check_names("user-agreement", version)
    assert caught.value.code == "invalid_version"


@pytest.mark.parametrize("kind", ["User-agreement", "1st", "-a", "a_b", "a.b", "a" * 33, "用户协议"])
def test_bad_kinds(kind):
    with pytest.raises(errors.DomainError) as caught:
        check_names(kind, "1.0")
    assert caught.value.code == "invalid_kind"
