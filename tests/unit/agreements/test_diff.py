"""``diff_lines``: the readable difference the interstitial shows between two versions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from passport.agreements.service import diff_lines


def test_changed_lines_are_removed_then_added_with_context():
    old = "\n".join(f"第{i}条" for i in range(1, 21))
    new = old.replace("第10条", "第10条（修订）")
    assert diff_lines(old, new) == [("…", ""), ("=", "第8条"), ("=", "第9条"), ("-", "第10条"), ("+", "第10条（修订）"),
                                    ("=", "第11条"), ("=", "第12条"), ("…", "")]


def test_identical_texts_have_no_changes():
    assert all(op in "=…" for op, _ in diff_lines("a\nb\n", "a\nb\n"))


def test_a_short_unchanged_run_is_kept_whole():
    assert diff_lines("a\nb\nc", "a\nB\nc") == [("=", "a"), ("-", "b"), ("+", "B"), ("=", "c")]


lines = st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e"
                                                                                       "\x85\u2028\u2029"),
                         max_size=8), max_size=30)


@given(lines, lines)
def test_the_new_text_is_the_kept_and_added_lines(old, new):
    ops = diff_lines("\n".join(old), "\n".join(new), context=10_000)  # no elision: every line present
    assert [line for op, line in ops if op in "=+"] == "\n".join(new).splitlines()
    assert [line for op, line in ops if op in "=-"] == "\n".join(old).splitlines()


def test_diff_blocks_gives_the_new_text_block_by_block_with_changes_marked():
    from passport.agreements.service import diff_blocks

    old = "# 协议\n\n第一条 不变。\n\n第二条 旧的。\n\n第三条 将删除。\n"
    new = "# 协议\n\n第一条 不变。\n\n第二条 新的。\n\n第四条 新增的。\n"
    assert diff_blocks(old, new) == [("=", "# 协议"), ("=", "第一条 不变。"), ("~", "第二条 新的。"),
                                     ("~", "第四条 新增的。"), ("-", "第二条 旧的。"), ("-", "第三条 将删除。")]
    assert diff_blocks("a\n\nb", "a\n\nb\n\nc") == [("=", "a"), ("=", "b"), ("+", "c")]
    assert diff_blocks("a\n\nb\n\nc", "a\n\nc") == [("=", "a"), ("-", "b"), ("=", "c")]
    # A heading with its paragraph on the next line is one block; blank-line runs do not make empty ones.
    assert diff_blocks("", "## 二、\n内容\n\n\n\n尾") == [("+", "## 二、\n内容"), ("+", "尾")]
