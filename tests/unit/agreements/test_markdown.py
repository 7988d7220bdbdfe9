"""What ``check_markdown`` refuses as a document body, and what it lets through."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from passport import errors
from passport.agreements.service import MAX_BODY_CHARS, check_markdown


def code_of(body: str) -> tuple[str, list[tuple[str, str, str]]]:
    with pytest.raises(errors.DomainError) as caught:
        check_markdown(body)
    return caught.value.code, [(e.field, e.code, e.message) for e in caught.value.errors]


@pytest.mark.parametrize("body", [
    "# 用户服务协议\n\n第一条 ……\n",
    "text\n\n```\ncode\n```\n",
    "~~~~ python\nx = 1\n~~~~~\n",
    "````\n```\nnested\n```\n````\n",
    "<script>alert(1)</script> is shown as text\n",
    "tabs\tand\r\nwindows line ends\r\n",
    "x" * MAX_BODY_CHARS,
    "```inline``` code on a line of its own\n",
])
def test_readable_documents_pass(body):
    check_markdown(body)


def test_an_unclosed_fence_is_named_by_its_line():
    assert code_of("# T\n\n```\nnever closed\n") == (
        "invalid_markdown", [("body", "unclosed_code_fence", "line 3")])
    # A shorter or different fence does not close it.
    assert code_of("````\ncode\n```\n")[0] == "invalid_markdown"
    assert code_of("```\ncode\n~~~\n")[0] == "invalid_markdown"


def test_control_characters_are_named_by_their_line():
    assert code_of("ok\nbad \x00 here\n") == ("invalid_markdown", [("body", "control_character", "line 2")])
    assert code_of("\x1b[31mred\n")[0] == "invalid_markdown"


def test_empty_and_oversized_bodies():
    assert code_of(" \n\t\n")[0] == "empty_body"
    assert code_of("x" * (MAX_BODY_CHARS + 1))[0] == "body_too_long"


printable = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=200)


@given(printable.filter(lambda s: s.strip()))
def test_text_without_fences_or_controls_always_passes(text):
    body = "\n".join(line for line in text.splitlines() if not line.lstrip(" ").startswith(("```", "~~~")))
    if body.strip():
        check_markdown(body)


@given(printable, st.sampled_from(["```", "~~~", "````"]))
def test_a_fenced_block_passes_once_closed_and_fails_open(text, fence):
    inner = "\n".join(line for line in text.splitlines() if not line.lstrip(" ").startswith(("`", "~")))
    check_markdown(f"intro\n{fence}\n{inner}\n{fence}\n")
    with pytest.raises(errors.DomainError):
        check_markdown(f"intro\n{fence}\n{inner}\n")
