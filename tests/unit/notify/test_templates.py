"""Notice templates: every file has both languages and renders with its parameters; an unknown
template or a missing parameter is an error at queue time, never a half-filled message."""

from __future__ import annotations

import re
import string
from types import SimpleNamespace

import pytest

from passport.notify.outbox import LANGUAGES, TEMPLATE_DIR, TemplateError, load_template, render
from passport.settings import Settings

# keys: a template may compute a signed parameter (e.g. phone_change_held's link) when rendered.
RT = SimpleNamespace(settings=SimpleNamespace(base_url="https://passport.example/"),
                     keys=SimpleNamespace(secret=b"k" * 32))
TEMPLATES = sorted(path.stem for path in TEMPLATE_DIR.glob("*.toml"))


def placeholders(name: str) -> set[str]:
    found = set()
    for lang in LANGUAGES:
        for text in load_template(name)[lang].values():
            found |= {field for _, field, _, _ in string.Formatter().parse(text) if field}
    return found


def test_there_are_templates():
    assert {"password_changed", "notice_locked", "notice_account_action"} <= set(TEMPLATES)


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_renders_in_both_languages(name):
    params = {field: f"<{field}>" for field in placeholders(name) if field != "base"}
    for lang in LANGUAGES:
        rendered = render(RT, name, params, lang)
        assert rendered.title.strip() and rendered.text.strip()
        assert "{" not in rendered.text.replace("{{", "")
    if name != "notice_message":  # free text from operators
        zh = render(RT, name, params, "zh-CN")
        assert re.search(r"[\u4e00-\u9fff]", zh.title + zh.text)


def test_base_url_is_filled_in_and_parameters_by_language():
    rendered = render(RT, "password_changed", {"time": "2026-01-02 03:04"}, "en")
    assert "https://passport.example/account-stolen" in rendered.text and "2026-01-02 03:04" in rendered.text
    action = {"action_name": {"zh-CN": "警告", "en": "warning"}, "reason": "r", "deadline": {"zh-CN": "", "en": ""},
              "appeal": {"zh-CN": "如有异议，可在此提出申诉：x", "en": "appeal: x"}}
    assert "申诉" in render(RT, "notice_account_action", action, "zh-CN").text
    assert "警告" in render(RT, "notice_account_action", action, "zh-CN").text
    assert "warning" in render(RT, "notice_account_action", action, "en").text


def test_an_unknown_language_falls_back_to_chinese():
    chinese = load_template("notice_locked")["zh-CN"]["title"]
    assert render(RT, "notice_locked", {"minutes": "15"}, "fr").title == chinese


def test_unknown_template_and_missing_parameter_are_errors():
    with pytest.raises(TemplateError, match="unknown"):
        render(RT, "no_such_notice", {}, "zh-CN")
    with pytest.raises(TemplateError, match="not a template id"):
        render(RT, "../settings", {}, "zh-CN")
    with pytest.raises(TemplateError, match="minutes"):
        render(RT, "notice_locked", {}, "zh-CN")


def test_a_parameter_value_is_never_formatted_again():
    rendered = render(RT, "notice_message", {"title": "{base}", "text": "{0.__class__}"}, "zh-CN")
    assert rendered.title == "{base}" and rendered.text == "{0.__class__}"


def test_sms_template_codes_are_read_from_json(monkeypatch):
    monkeypatch.setenv("PASSPORT_SMS_TEMPLATES", '{"notice_locked": "SMS_42"}')
    assert Settings(env="test").sms_templates == {"notice_locked": "SMS_42"}
