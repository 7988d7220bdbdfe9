"""Every user-visible string of single sign-on has its zh-CN translation (English is the msgid)."""

from __future__ import annotations

import re
from pathlib import Path

from passport.web.i18n import catalog

SRC = Path(__file__).resolve().parents[3] / "src" / "passport"
TEMPLATES = ("oidc_consent.html", "oidc_logout.html", "oidc_apps.html", "admin_apps.html", "oidc_continue.html")


def _msgids() -> set[str]:
    found: set[str] = set()
    for name in TEMPLATES:
        found |= set(re.findall(r'_\("((?:[^"\\]|\\.)*)"', (SRC / "web" / "templates" / name).read_text()))
    for name in ("pages.py", "service.py"):
        text = (SRC / "oidc" / name).read_text()
        found |= set(re.findall(r'translate\(request, "([^"]+)"', text))
        found |= set(re.findall(r'DomainError\(\s*"[a-z_]+",\s*"([^"]+)"', text))
        found |= {a + b for a, b in re.findall(r'_invalid\("[a-z_]+", "([^"]+)"(?:\s*\n\s*"([^"]+)")?', text)}
    return found


def test_every_sso_message_has_a_chinese_translation():
    chinese = catalog("zh-CN")
    ids = _msgids()
    assert len(ids) > 60
    assert sorted(m for m in ids if m not in chinese) == []
