"""Every GET page in a real browser (issue 20): as a visitor, a user and each staff role, in zh-CN and
English, at 390x844 and 1280x800. Each page must fit the screen (no sideways scrolling), show no raw
msgid or event key, load no resource that answers 4xx/5xx, log no console error, and pass axe-core
with no serious or critical violation. The pages come from the app's own routes: a new page is
crawled without being listed here (one with a path parameter is given an id below, or named in
``NOT_CRAWLED`` with the reason). Screenshots of the key pages go to ``var/screenshots/`` (or
``$PASSPORT_SCREENSHOT_DIR``) for CI to keep.

One server, one browser; axe runs once per page and language (at the phone size, where most layout
problems show); the rest of the checks run at both sizes."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from babel.messages.extract import extract_from_dir
from fastapi.routing import APIRoute
from sqlalchemy import select

from passport.app import PAGE_ROUTERS
from passport.notify.models import Announcement, InboxMessage
from passport.reviews.models import Review
from passport_testing import bearer, deliver_notices, make_staff, register_account

NEW_PASSWORD = "Crawl-4-Pages!x"

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

SRC = Path(__file__).resolve().parents[2] / "src" / "passport"
SHOTS = Path(os.environ.get("PASSPORT_SCREENSHOT_DIR") or Path(__file__).resolve().parents[2] / "var" / "screenshots")
SIZES = ((390, 844), (1280, 800))
LANGUAGES = ("zh-CN", "en")
SEVERE = ("serious", "critical")

# GET routes that are not pages to look at, with the reason.
NOT_CRAWLED = {
    "/dev/outbox": "dev only (PASSPORT_ENV=dev); not mounted in the test app",
    "/admin/reviews/{review_id}/document": "an uploaded image or PDF, not a page",
    "/admin/enrol/{token}": "needs a one-time enrolment token (its own journey test)",
    "/notices/unsubscribe": "needs a signed token (its own tests)",
    "/phone-change/not-me": "needs a signed token (its own tests)",
    "/logout": "POST only",
    "/organizations/{org_id}": "needs a verified organisation (test_realname_journey opens it)",
    "/admin/avatars/{avatar_id}": "an image, not a page (test_profile_journey opens it)",
    "/u/{account_id}/avatar/{avatar_id}": "an image, not a page (test_profile_journey opens it)",
    "/admin/reports/{review_id}/evidence/{document_id}": "an uploaded image, not a page (tests/integration/reports)",
    "/qr/{code}": "needs a live QR login request (test_passwordless_journey opens it)",
    "/appeals/new": "needs a signed appeal link from a notice (test_report_journey opens it)",
    "/admin/reports/{review_id}": "needs a report case (test_report_journey opens it)",
    "/admin/appeals/{review_id}": "needs an appeal (test_report_journey opens it)",
    "/admin/organizations/{org_id}": "needs an organisation (tests/integration/reports/test_admin_pages.py)",
    "/.well-known/openid-configuration": "JSON for apps, not a page (tests/integration/oidc)",
    "/oauth/jwks": "JSON for apps, not a page (tests/integration/oidc)",
    "/oauth/userinfo": "JSON for apps with an access token, not a page (tests/integration/oidc)",
    "/oauth/authorize": "needs an app's authorization request (test_sso_journey opens it)",
}
# Where the pages' links go from a visitor's point of view (no account needed).
PUBLIC = ("/", "/login", "/login?method=sms", "/register", "/forgot-password", "/account-stolen", "/unfreeze",
          "/announcements", "/agreements/user-agreement", "/agreements/privacy-policy", "/admin/login")
# Key pages whose screenshots CI keeps.
SCREENSHOTS = {"/login": "login", "/account": "account-centre", "/admin": "admin-dashboard",
               "/admin/audit": "audit-log", "/admin/reviews": "review-queue"}
# A stored key the pages may show beside its name (the audit log's second line); elsewhere a raw key
# ("account.profile_updated") means a name is missing.
RAW_KEY = re.compile(r"\b[a-z]+(?:_[a-z]+)*\.[a-z]+(?:_[a-z]+)*\b")
ALLOWED_DOTTED = re.compile(r"example\.(?:cn|com)|passport-recovery-key\.txt|beian\.miit|gov\.cn")
# "新版本， 也可以", "。 原因：": a space typed after full-width punctuation (two sentences joined by a
# template's line break); "。。": a doubled full stop.
CHINESE_GAP = re.compile(r"[\u4e00-\u9fff][，。：；！？、][ \u3000]+[\u4e00-\u9fff]|。。")
TEXT_WITHOUT_KEYS = """() => {
  const body = document.body.cloneNode(true);
  const hidden = '.action-key, code, .mono, script, style, [hidden], dialog, .visually-hidden';
  body.querySelectorAll(hidden).forEach(e => e.remove());
  return body.innerText;
}"""


def english_msgids() -> set[str]:
    """Template messages long enough to be sure of (three words or more, no placeholders): one of them
    on a zh-CN page is a missing translation."""
    found = extract_from_dir(str(SRC / "web" / "templates"), method_map=[("**.html", "jinja2.ext:babel_extract")],
                             options_map={"**.html": {"extensions": "jinja2.ext.i18n"}})
    return {m for _f, _l, m, _c, _ctx in found
            if isinstance(m, str) and "%(" not in m and len(m.split()) >= 3 and m.isascii()}


@pytest.fixture(scope="module")
def cast(live_server, rt):
    """A user with messages and a held nickname, a second user whose review waits, and one staff member
    of each role."""
    with httpx.Client(base_url=live_server) as http:
        user = register_account(http, rt, nickname="爬虫用户")
        other = register_account(http, rt, nickname="待审用户")
        held = http.patch("/api/v1/me", json={"nickname": "中國象棋小周"}, headers=bearer(other["session"]["token"]))
        assert held.status_code == 202, held.text
    staff = {role: make_staff(rt, role) for role in ("superadmin", "reviewer", "auditor", "operator")}
    with httpx.Client(base_url=live_server) as http:
        published = http.post("/api/v1/admin/announcements", headers=staff["operator"]["headers"], json={
            "title": "系统升级通知", "body": "## 升级说明\n\n今晚 **22:00** 起升级，详见 <https://example.cn/>。"})
        assert published.status_code == 201, published.text
        changed = http.put("/api/v1/me/password", headers=bearer(user["session"]["token"]),
                           json={"current_password": user["password"], "new_password": NEW_PASSWORD})
        assert changed.status_code == 200, changed.text
        user["session"] = changed.json()
    deliver_notices(rt)  # the "password changed" notice reaches the inbox
    with rt.db.read() as db:
        message = db.scalars(select(InboxMessage.id).where(InboxMessage.account_id == user["account"]["id"])).first()
        review = db.scalars(select(Review.id).where(Review.status == "pending")).first()
    return {"user": user, "staff": staff, "ids": {"message_id": message, "review_id": review,
                                                  "account_id": other["account"]["id"]}}


def page_routes() -> list[str]:
    """The GET pages of every router app.py lists in PAGE_ROUTERS."""
    paths = []
    for router in PAGE_ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute) and "GET" in route.methods and route.path not in NOT_CRAWLED:
                paths.append(route.path)
    return sorted(set(paths))


def filled(path: str, ids: dict, rt) -> str | None:
    """The path with its parameters given real values, or None when this test has none for it."""
    values = dict(ids, kind="user-agreement", version="1.0")
    with rt.db.read() as db:
        values["announcement_id"] = db.scalars(select(Announcement.id)).first()
    names = re.findall(r"{(\w+)}", path)
    if any(values.get(n) is None for n in names):
        return None
    return re.sub(r"{(\w+)}", lambda m: str(values[m.group(1)]), path)


class Visit:
    """One browser context (a size, a language, a signed-in person) that records what goes wrong."""

    def __init__(self, browser, live_server: str, lang: str, size: tuple[int, int], cookie: tuple[str, str] | None):
        self.context = browser.new_context(viewport={"width": size[0], "height": size[1]}, locale=lang)
        if cookie:
            self.context.add_cookies([{"name": cookie[0], "value": cookie[1], "url": live_server}])
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.live_server, self.lang, self.size = live_server, lang, size
        self.problems: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"script error: {e}"))
        self.page.on("response", lambda r: r.status >= 400 and self.problems.append(f"{r.status} {r.url}"))

    def check(self, path: str, msgids: set[str], axe: Axe | None) -> list[str]:
        self.problems = []
        sep = "&" if "?" in path else "?"
        answer = self.page.goto(f"{self.live_server}{path}{sep}lang={self.lang}")
        where = f"{path} [{self.lang} {self.size[0]}]"
        found = [f"{where}: {p}" for p in self.problems]
        if answer is None or answer.status >= 400:
            return found
        width = self.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if width[0] > width[1]:
            found.append(f"{where}: {width[0]} px wide on a {width[1]} px screen")
        text = self.page.evaluate(TEXT_WITHOUT_KEYS)
        keys = [k for k in RAW_KEY.findall(text) if not ALLOWED_DOTTED.search(k)]
        if keys:
            found.append(f"{where}: raw keys {sorted(set(keys))[:5]}")
        if self.lang == "zh-CN":
            untranslated = sorted(m for m in msgids if m in text)
            if untranslated:
                found.append(f"{where}: untranslated {untranslated[:3]}")
            gaps = CHINESE_GAP.findall(text)
            if gaps:
                found.append(f"{where}: a space after Chinese punctuation {gaps[:3]}")
        if axe is not None:
            results = axe.run(self.page)
            severe = [v for v in results.response["violations"] if v.get("impact") in SEVERE]
            for v in severe:
                targets = [n["target"] for n in v["nodes"]][:2]
                found.append(f"{where}: axe {v['id']} ({v['impact']}) {targets}")
        if self.size == (1280, 800) and self.lang == "zh-CN" and path.split("?")[0] in SCREENSHOTS:
            SHOTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(SHOTS / f"{SCREENSHOTS[path.split('?')[0]]}.png"), full_page=True)
        if self.size == (390, 844) and self.lang == "zh-CN" and path.split("?")[0] in SCREENSHOTS:
            SHOTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(SHOTS / f"{SCREENSHOTS[path.split('?')[0]]}-phone.png"), full_page=True)
        return found

    def close(self):
        self.context.close()


def crawl(browser, live_server, pages: list[str], cookie, msgids) -> list[str]:
    problems = []
    axe = Axe()
    for lang in LANGUAGES:
        for size in SIZES:
            visit = Visit(browser, live_server, lang, size, cookie)
            try:
                for path in pages:
                    problems += visit.check(path, msgids, axe if size == SIZES[0] else None)
            finally:
                visit.close()
    return problems


def test_every_page_fits_is_translated_loads_cleanly_and_passes_axe(browser, live_server, rt, cast):
    msgids = english_msgids()
    routes = page_routes()
    user_pages, staff_pages, skipped = [], [], []
    for route in routes:
        path = filled(route, cast["ids"], rt) if "{" in route else route
        if path is None:
            skipped.append(route)
        elif route.startswith("/admin"):
            staff_pages.append(path)
        elif route not in ("/login", "/register"):  # a signed-in browser is sent on from these
            user_pages.append(path)
    assert not [r for r in skipped if r not in NOT_CRAWLED], f"pages with no value for their parameters: {skipped}"
    assert "/account" in user_pages and "/admin/audit" in staff_pages

    problems = crawl(browser, live_server, list(PUBLIC), None, msgids)
    problems += crawl(browser, live_server, user_pages, ("passport_session", cast["user"]["session"]["token"]), msgids)
    for role, member in cast["staff"].items():
        # Each role crawls the console pages its navigation offers (and the dashboard).
        visit = Visit(browser, live_server, "zh-CN", SIZES[1], ("passport_admin", member["token"]))
        visit.page.goto(f"{live_server}/admin")
        offered = visit.page.eval_on_selector_all("#admin-nav a", "links => links.map(a => a.getAttribute('href'))")
        visit.close()
        assert offered[0] == "/admin", role
        details = [p for p in staff_pages if p.rsplit("/", 1)[0] != "/admin" and p.rsplit("/", 1)[0] in offered]
        pages = offered + details
        problems += crawl(browser, live_server, pages, ("passport_admin", member["token"]), msgids)
    assert problems == [], "\n".join(problems)
    for name in SCREENSHOTS.values():
        assert (SHOTS / f"{name}.png").exists(), name
