"""Admin console pages under /admin."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from passport import errors, guards
from passport.accounts.service import STATUSES as ACCOUNT_STATUSES
from passport.admin import enforcement
from passport.admin import service as admin
from passport.moderation import operators
from passport.moderation import service as moderation
from passport.moderation.lexicon import CATEGORIES, FIELDS, VERDICTS
from passport.passwordless import passkeys
from passport.reports import retention
from passport.reviews import service as reviews
from passport.web import html as web
from passport.web import http
from passport.web.html import FIELD_CAP, ButtonForm, CheckedForm, FormState

router = APIRouter(include_in_schema=False)

LOGIN_FIELDS = ("login", "password", "totp")
ENROL_FIELDS = ("password", "totp")
STAFF_FIELDS = ("login", "role")

StaffManager = guards.StaffPage("staff.manage")
AccountReader = guards.StaffPage("accounts.read")


def _set_admin_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(http.ADMIN_COOKIE, token, max_age=int(admin.STAFF_ABSOLUTE.total_seconds()), path="/",
                        samesite="strict", secure=not web.runtime(request).settings.is_dev, httponly=True)


def _clear_admin_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(http.ADMIN_COOKIE, path="/", samesite="strict",
                           secure=not web.runtime(request).settings.is_dev, httponly=True)


def _next_path(value: str | None) -> str:
    if value and value.startswith("/admin") and not value.startswith("//") and "\\" not in value:
        return value
    return "/admin"


# --- enrolment ---------------------------------------------------------------------------------------

def enrol_page(request: Request, token: str, state: FormState) -> Response:
    try:
        shown = admin.enrolment(web.runtime(request), token)
    except errors.DomainError as exc:
        return web.error_page(request, exc)
    secret = shown["secret"]
    return guards.admin_render(request, "admin_enrol.html", state.status, page_path=f"/admin/enrol/{token}", staff=None,
                  form=state, enrolment=shown, qr=web.qr_image(shown["otpauth_uri"]),
                  grouped_secret=" ".join(secret[i:i + 4] for i in range(0, len(secret), 4)),
                  password_min_length=web.runtime(request).settings.password_min_length)


@router.get("/admin/enrol/{token}")
def enrol_form(token: str, request: Request) -> Response:
    return enrol_page(request, token, FormState())


@router.post("/admin/enrol/{token}")
def enrol(token: str, request: Request, form: CheckedForm) -> Response:
    try:
        form.check()
        admin.enrol(web.runtime(request), web.web_origin(request), token, form.get("password", ""),
                    form.get("totp", ""))
    except errors.DomainError as exc:
        if exc.code == "enrolment_invalid":
            return web.error_page(request, exc)
        # The page's field is "totp"; the code check names "code".
        exc.errors = [errors.FieldError("totp", e.code, e.message) if e.field == "code" else e for e in exc.errors]
        return enrol_page(request, token, web.failed_form(request, exc, {}, ENROL_FIELDS))
    return login_page(request, FormState(notice=web.translate(
        request, "Enrolment is complete. Log in with your password and a code from the app.")))


# --- login, logout -----------------------------------------------------------------------------------

def login_page(request: Request, state: FormState, next_path: str = "/admin") -> Response:
    return guards.admin_render(request, "admin_login.html", state.status, page_path="/admin/login", staff=None,
                               form=state, next_path=next_path)


@router.get("/admin/login")
def login_form(request: Request, next: str | None = None) -> Response:  # noqa: A002 - the query name
    if guards.current_staff(request) is not None:
        return web.redirect(request, _next_path(next))
    return login_page(request, FormState(), _next_path(next))


@router.post("/admin/login")
def login(request: Request, form: CheckedForm) -> Response:
    values = {"login": form.get("login", "")}
    next_path = _next_path(form.get("next"))
    try:
        form.check()
        done = admin.login_staff(web.runtime(request), web.web_origin(request), values["login"],
                                 form.get("password", ""), form.get("totp", ""))
    except errors.DomainError as exc:
        return login_page(request, web.failed_form(request, exc, values, LOGIN_FIELDS), next_path)
    previous = guards.current_staff(request)
    if previous is not None:
        admin.end_staff_session(web.runtime(request), web.web_origin(request), previous)
    response = web.redirect(request, next_path)
    _set_admin_cookie(request, response, done.token)
    return response


@router.post("/admin/logout")
def logout(request: Request, _form: ButtonForm) -> Response:
    principal = guards.current_staff(request)
    if principal is not None:
        admin.end_staff_session(web.runtime(request), web.web_origin(request), principal)
    response = web.redirect(request, "/admin/login")
    _clear_admin_cookie(request, response)
    return response


# --- dashboard, staff ---------------------------------------------------------------------------------

@router.get("/admin")
def dashboard(request: Request, principal: guards.StaffPage("dashboard.read")) -> Response:
    counts = admin.dashboard(web.runtime(request), principal)
    return guards.admin_render(request, "admin_dashboard.html", staff=principal, counts=counts,
                               review_queues=reviews.QUEUES)


def staff_list_page(request: Request, principal: admin.StaffPrincipal, state: FormState,
                    created: dict | None = None) -> Response:
    members = admin.list_staff(web.runtime(request), principal)
    return guards.admin_render(request, "admin_staff.html", state.status, page_path="/admin/staff", staff=principal,
                  form=state, members=members, created=created, roles=admin.ROLES)


STAFF_DONE = {"disabled": "The staff member is disabled and their sessions have ended."}


@router.get("/admin/staff")
def staff_list(request: Request, principal: StaffManager, done: str | None = None) -> Response:
    notice = STAFF_DONE.get(done or "")
    return staff_list_page(request, principal, FormState(notice=web.translate(request, notice) if notice else None))


@router.post("/admin/staff")
def staff_create(request: Request, principal: StaffManager, form: CheckedForm) -> Response:
    values = {"login": form.get("login", ""), "role": form.get("role", "")}
    try:
        form.check()
        created = admin.add_staff(web.runtime(request), web.web_origin(request), principal, login=values["login"],
                                  role=values["role"])
    except errors.DomainError as exc:
        return staff_list_page(request, principal, web.failed_form(request, exc, values, STAFF_FIELDS))
    return staff_list_page(request, principal, FormState(), created=created)


@router.post("/admin/staff/{staff_id}/disable")
def staff_disable(staff_id: str, request: Request, principal: StaffManager, form: CheckedForm) -> Response:
    try:
        form.check()
        admin.disable_staff(web.runtime(request), web.web_origin(request), principal, staff_id)
    except errors.DomainError as exc:
        return staff_list_page(request, principal, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, "/admin/staff?done=disabled")


@router.post("/admin/staff/{staff_id}/reset")
def staff_reset(staff_id: str, request: Request, principal: StaffManager, form: CheckedForm) -> Response:
    try:
        form.check()
        reset = admin.reset_staff(web.runtime(request), web.web_origin(request), principal, staff_id=staff_id)
    except errors.DomainError as exc:
        return staff_list_page(request, principal, web.failed_form(request, exc, {}, ()))
    return staff_list_page(request, principal, FormState(), created=reset | {"reset": True})


ACTION_FIELDS = ("action", "reason", "until")
REVEAL_FIELDS = ("field", "reveal_reason")
RESET_FIELDS = ("field", "reset_reason")
DONE_NOTICES = {"1": "The action has been taken and the user has been told.",
                "reset": "The information has been reset and the user has been told."}


def _search_page(request: Request, staff: admin.StaffPrincipal, state: FormState,
                 results: dict | None = None) -> Response:
    return web.render(request, "admin_accounts.html", state.status, page_path="/admin/accounts", staff=staff,
                      form=state, results=results, statuses=ACCOUNT_STATUSES)


@router.get("/admin/accounts")
def accounts_search_form(request: Request, staff: AccountReader) -> Response:
    return _search_page(request, staff, FormState())


@router.post("/admin/accounts")
def accounts_search(request: Request, staff: AccountReader, form: CheckedForm) -> Response:
    """A POST, so the phone number searched for stays out of URLs, access logs and browser history."""
    values = {"phone": form.get("phone", "")[:32], "status": form.get("status", "")[:16]}
    try:
        form.check()
        results = enforcement.search(web.runtime(request), web.web_origin(request), staff,
                                     phone=values["phone"] or None, status=values["status"] or None)
    except errors.DomainError as exc:
        if exc.code == "filter_required":  # the page has no ID-number field: say what it does have
            exc = errors.invalid("filter_required", "Enter a mobile number or choose a status.", "phone")
        return _search_page(request, staff, web.failed_form(request, exc, values, ("phone", "status")))
    return _search_page(request, staff, FormState(values=values), results)


def _detail_page(request: Request, staff: admin.StaffPrincipal, account_id: str, state: FormState,
                 revealed: dict | None = None) -> Response:
    try:
        account = enforcement.detail(web.runtime(request), web.web_origin(request), staff, account_id)
    except errors.DomainError as exc:
        return web.error_page(request, exc)
    # A legal hold is set and released by superadmins on /admin/legal-holds; here it is only shown.
    return web.render(request, "admin_accounts_detail.html", state.status, page_path=f"/admin/accounts/{account_id}",
                      staff=staff, form=state, account=account, revealed=revealed, actions=enforcement.ACTIONS,
                      legal_hold=retention.current_hold(web.runtime(request), account_id))


@router.get("/admin/accounts/{account_id}")
def account_detail(account_id: str, request: Request, staff: AccountReader) -> Response:
    done = request.query_params.get("done")
    notice = web.translate(request, DONE_NOTICES.get(done, DONE_NOTICES["1"])) if done else None
    return _detail_page(request, staff, account_id, FormState(notice=notice))


@router.post("/admin/accounts/{account_id}/actions")
def account_act(account_id: str, request: Request, staff: guards.StaffPage("accounts.act"),
                form: CheckedForm) -> Response:
    values = {name: form.get(name, "") for name in ACTION_FIELDS}
    try:
        form.check()
        until = web.local_time(values["until"],
                               errors.invalid("invalid_until", "Enter a valid date and time.", "until"))
        enforcement.act(web.runtime(request), web.web_origin(request), staff, account_id, action=values["action"],
                        reason=values["reason"], until=until)
    except errors.DomainError as exc:
        return _detail_page(request, staff, account_id, web.failed_form(request, exc, values, ACTION_FIELDS))
    return web.redirect(request, f"/admin/accounts/{account_id}?done=1")


@router.post("/admin/accounts/{account_id}/reset")
def account_reset(account_id: str, request: Request, staff: guards.StaffPage("reviews.decide"),
                  form: CheckedForm) -> Response:
    values = {"field": form.get("field", "")[:16], "reset_reason": form.get("reset_reason", "")}
    try:
        form.check()
        enforcement.reset_info(web.runtime(request), web.web_origin(request), staff, account_id,
                               field=values["field"], reason=values["reset_reason"])
    except errors.DomainError as exc:
        exc.errors = [errors.FieldError("reset_reason" if e.field == "reason" else e.field, e.code, e.message)
                      for e in exc.errors]
        return _detail_page(request, staff, account_id, web.failed_form(request, exc, values, RESET_FIELDS))
    return web.redirect(request, f"/admin/accounts/{account_id}?done=reset")


@router.post("/admin/accounts/{account_id}/reveal")
def account_reveal(account_id: str, request: Request, staff: guards.StaffPage("accounts.reveal"),
                   form: CheckedForm) -> Response:
    values = {"field": form.get("field", ""), "reveal_reason": form.get("reveal_reason", "")}
    try:
        form.check()
        value = enforcement.reveal(web.runtime(request), web.web_origin(request), staff, account_id,
                                   field=values["field"], reason=values["reveal_reason"])
    except errors.DomainError as exc:
        exc.errors = [errors.FieldError("reveal_reason" if e.field == "reason" else e.field, e.code, e.message)
                      for e in exc.errors]
        return _detail_page(request, staff, account_id, web.failed_form(request, exc, values, REVEAL_FIELDS))
    return _detail_page(request, staff, account_id, FormState(), revealed={"field": values["field"], "value": value})




@router.get("/admin/reviews")
def reviews_page(request: Request, staff: guards.StaffPage("reviews.decide")) -> Response:
    queues = [q for q in reviews.QUEUES if q not in reviews.OWN_DECISION]  # those have pages of their own
    counts = reviews.pending_counts(web.runtime(request))
    queue = request.query_params.get("queue")
    if queue not in queues:
        # Without a choice: the first queue where something waits (not an empty tab while work waits).
        queue = next((q for q in queues if counts.get(q)), queues[0])
    listing = reviews.list_reviews(web.runtime(request), queue, limit=reviews.PAGE_MAX)
    return web.render(request, "admin_reviews.html", page_path="/admin/reviews", staff=staff, queue=queue,
                      queues=queues, listing=listing, counts=counts)


# --- lexicons and the image blocklist (issue 17) -------------------------------------------------------

Moderator = guards.StaffPage("moderation.manage")
ENTRY_FIELDS = ("term", "category", "verdict", "fields", "context")
TEST_FIELDS = ("text", "field")
BLOCK_FIELDS = ("image", "phash", "block_category", "note")
MODERATION_NOTICES = {"added": "The term has been added. Every check uses it within seconds.",
                      "removed": "The term has been removed.", "blocked": "The image has been added to the blocklist.",
                      "unblocked": "The image has been removed from the blocklist."}


def _moderation_page(request: Request, staff: admin.StaffPrincipal, state: FormState,
                     tested: dict | None = None) -> Response:
    rt = web.runtime(request)
    engine = moderation.engine(rt)
    return web.render(request, "admin_moderation.html", state.status, page_path="/admin/moderation", staff=staff,
                      form=state, entries=operators.list_entries(rt), blocks=operators.list_image_blocks(rt),
                      categories=CATEGORIES, verdicts=VERDICTS, fields=FIELDS,
                      contexts=sorted(engine.lexicon.contexts), lexicon_version=engine.version, tested=tested)


@router.get("/admin/moderation")
def moderation_page(request: Request, staff: Moderator, done: str | None = None) -> Response:
    notice = MODERATION_NOTICES.get(done or "")
    return _moderation_page(request, staff, FormState(notice=web.translate(request, notice) if notice else None))


@router.post("/admin/moderation/lexicon")
def moderation_add(request: Request, staff: Moderator, form: CheckedForm) -> Response:
    values = {name: form.get(name, "")[:64] for name in ENTRY_FIELDS}
    rt = web.runtime(request)
    try:
        form.check()
        operators.add_entry(rt, web.web_origin(request), staff.staff_id, term=values["term"],
                            category=values["category"], verdict=values["verdict"],
                            fields=[values["fields"]] if values["fields"] else None, context=values["context"],
                            contexts=tuple(moderation.engine(rt).lexicon.contexts))
    except errors.DomainError as exc:
        return _moderation_page(request, staff, web.failed_form(request, exc, values, ENTRY_FIELDS))
    return web.redirect(request, "/admin/moderation?done=added")


@router.post("/admin/moderation/lexicon/{entry_id}/remove")
def moderation_remove(entry_id: str, request: Request, staff: Moderator, form: CheckedForm) -> Response:
    try:
        form.check()
        operators.remove_entry(web.runtime(request), web.web_origin(request), staff.staff_id, entry_id)
    except errors.DomainError as exc:
        return _moderation_page(request, staff, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, "/admin/moderation?done=removed")


@router.post("/admin/moderation/test")
def moderation_test(request: Request, staff: guards.StaffPage("moderation.check"), form: CheckedForm) -> Response:
    """Test a text against the current lexicons: the verdict and each hit, highlighted. Reads only."""
    values = {"text": form.get("text", "")[:2000], "field": form.get("field", "text")}
    try:
        form.check()
        decision = moderation.check(web.runtime(request), values["field"], values["text"])
    except errors.DomainError as exc:
        return _moderation_page(request, staff, web.failed_form(request, exc, values, TEST_FIELDS))
    return _moderation_page(request, staff, FormState(values=values),
                            tested={"text": values["text"], "marks": moderation.marks(decision)} | decision.view())


@router.post("/admin/moderation/images")
async def moderation_block(request: Request, staff: Moderator) -> Response:
    rt = web.runtime(request)
    fields, data = web.Form(), None
    form = await request.form()
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields[key] = value[:FIELD_CAP]
        elif key == "image":
            data = await value.read(rt.settings.upload_max_bytes + 1) or None
    web.checked(request, fields)
    values = {"phash": fields.get("phash", "")[:32], "block_category": fields.get("block_category", ""),
              "note": fields.get("note", "")[:500]}
    try:
        fields.check()
        await run_in_threadpool(operators.block_image, rt, web.web_origin(request), staff.staff_id, data=data,
                                phash=values["phash"], category=values["block_category"], note=values["note"])
    except errors.DomainError as exc:
        exc.errors = [errors.FieldError("block_category" if e.field == "category" else
                                        "image" if e.field == "avatar" else e.field, e.code, e.message)
                      for e in exc.errors]
        state = web.failed_form(request, exc, values, BLOCK_FIELDS)
        return await run_in_threadpool(_moderation_page, request, staff, state)
    return web.redirect(request, "/admin/moderation?done=blocked")


@router.post("/admin/moderation/images/{block_id}/remove")
def moderation_unblock(block_id: str, request: Request, staff: Moderator, form: CheckedForm) -> Response:
    try:
        form.check()
        operators.unblock_image(web.runtime(request), web.web_origin(request), staff.staff_id, block_id)
    except errors.DomainError as exc:
        return _moderation_page(request, staff, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, "/admin/moderation?done=unblocked")
# --- the signed-in staff member's passkeys (issue 21) ---------------------------------------------------

def staff_passkeys_page(request: Request, principal: admin.StaffPrincipal, state: FormState) -> Response:
    return guards.admin_render(request, "admin_passkeys.html", state.status, page_path="/admin/passkeys",
                               staff=principal, form=state,
                               passkeys=passkeys.staff_passkeys(web.runtime(request), principal.staff_id))


@router.get("/admin/passkeys")
def staff_passkeys(request: Request, principal: guards.StaffPage("dashboard.read"),
                   done: str | None = None) -> Response:
    notice = {"added": "Passkey added.", "removed": "Passkey removed."}.get(done or "")
    return staff_passkeys_page(request, principal, FormState(notice=web.translate(request, notice) if notice else None))


@router.post("/admin/passkeys/{passkey_id}/remove")
def staff_passkey_remove(passkey_id: str, request: Request, principal: guards.StaffPage("dashboard.read"),
                         form: CheckedForm) -> Response:
    try:
        form.check()
        passkeys.remove_staff(web.runtime(request), web.web_origin(request), principal.staff_id, passkey_id)
    except errors.DomainError as exc:
        return staff_passkeys_page(request, principal, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, "/admin/passkeys?done=removed")
