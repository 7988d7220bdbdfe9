"""Avatars (issue 17): PUT/DELETE /me/avatar and the account page's form; Pillow re-encoding (no
metadata, limits, animations refused), QR codes and the image blocklist refused, review of new
accounts' avatars (PASSPORT_AVATAR_REVIEW), the public address with cache headers, reviewers seeing
the held image, staff reset and the attacker's views."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
import segno
from PIL import Image, ImageDraw
from sqlalchemy import select

from passport.accounts.models import Account, Avatar
from passport.audit.models import AuditEvent
from passport.moderation import images
from passport.moderation.models import ImageBlock
from passport.reviews.models import Review
from passport_testing import bearer, csrf, make_staff, register_account

ADMIN = "/api/v1/admin"


def picture(seed: int = 1, size: tuple[int, int] = (400, 300), fmt: str = "PNG", **save) -> bytes:
    """A drawing with shapes that depend on ``seed`` (distinct perceptual hashes)."""
    image = Image.new("RGB", size, (240, 240, 240))
    draw = ImageDraw.Draw(image)
    for i in range(6):
        x, y = (seed * 37 + i * 61) % size[0], (seed * 53 + i * 29) % size[1]
        draw.ellipse((x - 40, y - 40, x + 40, y + 40), fill=((seed * 90 + i * 40) % 256, (i * 70) % 256, 120))
    draw.rectangle((0, 0, size[0] // (seed % 3 + 2), size[1] // 4), fill=(20, 40, (seed * 50) % 256))
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def qr_picture() -> bytes:
    out = io.BytesIO()
    segno.make("https://u.wechat.com/abcdefg", error="m").save(out, kind="png", scale=8, border=4)
    base = Image.open(io.BytesIO(out.getvalue())).convert("RGB")
    canvas = Image.new("RGB", (base.width + 120, base.height + 120), (250, 230, 200))
    canvas.paste(base, (60, 60))
    result = io.BytesIO()
    canvas.save(result, "JPEG", quality=92)
    return result.getvalue()


def put(client, done, data: bytes, name: str = "a.png", mime: str = "image/png"):
    return client.put("/api/v1/me/avatar", files={"avatar": (name, data, mime)},
                      headers=bearer(done["session"]["token"]))


def me(client, done) -> dict:
    return client.get("/api/v1/me", headers=bearer(done["session"]["token"])).json()


@pytest.fixture()
def trusted(rt, monkeypatch):
    monkeypatch.setattr(rt.settings, "avatar_review", "none")


def test_an_avatar_is_re_encoded_without_metadata_and_served_with_cache_headers(client, rt, trusted):
    done = register_account(client, rt)
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x010E] = "Home, 12 West Lake Road"  # ImageDescription
    upload = picture(2, fmt="JPEG", exif=exif.tobytes(), comment=b"taken at home")
    assert b"SecretCam" in upload
    answer = put(client, done, upload, "me.jpg", "image/jpeg")
    assert answer.status_code == 200, answer.text
    url = answer.json()["avatar_url"]
    assert url.startswith(f"/u/{done['account']['id']}/avatar/") and me(client, done)["avatar_url"] == url
    client.cookies.clear()
    image = client.get(url)  # no login needed for the image itself
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.headers["cache-control"] == "public, max-age=3600"
    for secret in (b"SecretCam", b"West Lake", b"taken at home"):
        assert secret not in image.content
    decoded = Image.open(io.BytesIO(image.content))
    assert decoded.size == (256, 256) and not decoded.getexif() and "comment" not in decoded.info
    viewer = register_account(client, rt)
    profile = client.get(f"/api/v1/accounts/{done['account']['id']}/profile",
                         headers=bearer(viewer["session"]["token"]))
    assert profile.json()["avatar_url"] == url
    # A new avatar replaces it: the old address is gone.
    newer = put(client, done, picture(3)).json()["avatar_url"]
    assert newer != url and client.get(url).status_code == 404 and client.get(newer).status_code == 200


@pytest.mark.parametrize(("data", "code"), [
    (b"", "file_required"),
    (b"MZ\x90\x00not an image at all", "invalid_image"),
    (b"\x89PNG\r\n\x1a\n" + bytes(64), "invalid_image"),  # a PNG signature, no image
    (b"%PDF-1.7\n" + bytes(64), "invalid_image"),
])
def test_what_is_not_an_image_is_refused(client, rt, trusted, data, code):
    done = register_account(client, rt)
    answer = put(client, done, data)
    assert answer.status_code == 422 and answer.json()["code"] == code
    assert me(client, done)["avatar_url"] is None


def test_limits_and_animations(client, rt, trusted, monkeypatch):
    done = register_account(client, rt)
    monkeypatch.setattr(rt.settings, "avatar_max_pixels", 300)
    wide = put(client, done, picture(1, size=(400, 200)))
    assert wide.status_code == 422 and wide.json()["code"] == "image_too_large" and wide.json()["limit"] == "dimensions"
    monkeypatch.setattr(rt.settings, "avatar_max_bytes", 2000)
    heavy = put(client, done, picture(1, size=(290, 290), fmt="BMP"))
    assert heavy.status_code == 422 and heavy.json()["limit"] == "bytes"
    monkeypatch.setattr(rt.settings, "avatar_max_bytes", 2 * 1024 * 1024)
    frames = [Image.new("RGB", (64, 64), color) for color in ((255, 0, 0), (0, 255, 0))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    animated = put(client, done, out.getvalue(), "a.gif", "image/gif")
    assert animated.status_code == 422 and animated.json()["code"] == "animated_image"
    still = io.BytesIO()
    frames[0].save(still, "GIF")
    assert put(client, done, still.getvalue(), "s.gif", "image/gif").status_code == 200


def test_a_decompression_bomb_is_refused_before_decoding(client, rt, trusted):
    done = register_account(client, rt)
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")  # small file, 400 megapixels
    answer = put(client, done, bomb.getvalue())
    assert answer.status_code == 422 and answer.json()["code"] == "image_too_large"


def test_a_qr_code_is_refused_as_contact_details_and_audited(client, rt, trusted):
    done = register_account(client, rt)
    answer = put(client, done, qr_picture(), "qr.jpg", "image/jpeg")
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0] | {"message": ""} == {"field": "avatar", "code": "account_info_rejected",
                                                             "category": "advertising", "message": ""}
    assert me(client, done)["avatar_url"] is None
    with rt.db.read() as db:
        refused = db.scalars(select(AuditEvent).where(AuditEvent.subject_id == done["account"]["id"],
                                                      AuditEvent.action == "account.profile_refused")
                              .order_by(AuditEvent.seq)).all()
        assert db.scalars(select(Avatar).where(Avatar.account_id == done["account"]["id"])).all() == []
    assert json.loads(refused[-1].details)["rule"] == "image:qr_code"


def test_an_image_on_the_blocklist_is_refused_even_slightly_changed(client, rt, trusted):
    done = register_account(client, rt)
    banned = picture(7)
    phash = str(images.process(banned, max_bytes=10**7, max_pixels=4096, size=256).phash)
    with rt.db.write() as db:
        images.add_block(db, phash, "pornography", "test", "op", rt.clock.now())
    answer = put(client, done, banned)
    assert answer.status_code == 422 and answer.json()["errors"][0]["category"] == "pornography"
    # Re-encoded, resized: still refused. A different picture passes.
    recompressed = io.BytesIO()
    Image.open(io.BytesIO(banned)).convert("RGB").resize((380, 285)).save(recompressed, "JPEG", quality=70)
    assert put(client, done, recompressed.getvalue(), "b.jpg", "image/jpeg").status_code == 422
    assert put(client, done, picture(8)).status_code == 200
    with rt.db.write() as db:
        db.execute(ImageBlock.__table__.delete().where(ImageBlock.phash == phash))


def test_a_new_accounts_avatar_waits_for_a_reviewer_and_is_not_shown_until_approved(client, rt):
    assert rt.settings.avatar_review == "new"
    reviewer = make_staff(rt, "reviewer")
    done = register_account(client, rt)
    account_id = done["account"]["id"]
    held = put(client, done, picture(11))
    assert held.status_code == 202 and held.json() == {"status": "pending_review", "fields": ["avatar"]}
    shown = me(client, done)
    assert shown["avatar_url"] is None and set(shown["pending_review"]) == {"avatar"}
    avatar_id = shown["pending_review"]["avatar"]
    # Not shown to anyone: the public address does not exist, the profile has none.
    assert client.get(f"/u/{account_id}/avatar/{avatar_id}").status_code == 404
    [item] = _pending(rt, account_id)
    payload = json.loads(item.payload)
    assert payload["field"] == "avatar" and payload["value"] == avatar_id and payload["why"] == "new_account"
    # The reviewer sees the image (never cached); others cannot.
    seen = client.get(f"{ADMIN}/avatars/{avatar_id}", headers=reviewer["headers"])
    assert seen.status_code == 200 and seen.headers["cache-control"] == "no-store"
    assert client.get(f"{ADMIN}/avatars/{avatar_id}", headers=bearer(done["session"]["token"])).status_code == 401
    assert client.get(f"{ADMIN}/avatars/{avatar_id}", headers=make_staff(rt, "auditor")["headers"]).status_code == 403
    assert client.post(f"{ADMIN}/reviews/{item.id}/claim", headers=reviewer["headers"]).status_code == 200
    assert client.post(f"{ADMIN}/reviews/{item.id}", json={"decision": "approve"},
                       headers=reviewer["headers"]).status_code == 200
    approved = me(client, done)
    assert approved["avatar_url"] == f"/u/{account_id}/avatar/{avatar_id}" and approved["pending_review"] == {}
    assert client.get(approved["avatar_url"]).status_code == 200


def test_a_rejected_avatar_is_dropped_and_the_old_one_stays(client, rt, monkeypatch):
    reviewer = make_staff(rt, "reviewer")
    done = register_account(client, rt)
    account_id = done["account"]["id"]
    monkeypatch.setattr(rt.settings, "avatar_review", "none")
    first = put(client, done, picture(12)).json()["avatar_url"]
    monkeypatch.setattr(rt.settings, "avatar_review", "all")
    assert put(client, done, picture(13)).status_code == 202
    [item] = _pending(rt, account_id)
    held_id = json.loads(item.payload)["value"]
    assert me(client, done)["avatar_url"] == first  # the old one stays visible while the new one waits
    client.post(f"{ADMIN}/reviews/{item.id}/claim", headers=reviewer["headers"])
    rejected = client.post(f"{ADMIN}/reviews/{item.id}", json={"decision": "reject", "reason": "不适宜"},
                           headers=reviewer["headers"])
    assert rejected.status_code == 200
    assert me(client, done)["avatar_url"] == first and me(client, done)["pending_review"] == {}
    with rt.db.read() as db:
        row = db.get(Avatar, held_id)
        assert row.status == "rejected" and row.image is None


def test_trusted_accounts_with_real_name_skip_review_under_new(client, rt):
    done = register_account(client, rt)
    with rt.db.write() as db:
        account = db.get(Account, done["account"]["id"])
        account.real_name_status = "verified"
        account.created_at = account.created_at - timedelta(days=rt.settings.avatar_trusted_days + 1)
    rt.sessions_cache.drop(lambda row: True)
    assert put(client, done, picture(14)).status_code == 200


def test_delete_and_staff_reset(client, rt, trusted):
    reviewer = make_staff(rt, "reviewer")
    done = register_account(client, rt)
    account_id = done["account"]["id"]
    url = put(client, done, picture(15)).json()["avatar_url"]
    reset = client.post(f"{ADMIN}/accounts/{account_id}/reset", json={"field": "avatar", "reason": "头像违规"},
                        headers=reviewer["headers"])
    assert reset.status_code == 200 and reset.json() == {"field": "avatar", "reset": True}
    assert me(client, done)["avatar_url"] is None and client.get(url).status_code == 404
    url = put(client, done, picture(16)).json()["avatar_url"]
    assert client.delete("/api/v1/me/avatar", headers=bearer(done["session"]["token"])).status_code == 204
    assert me(client, done)["avatar_url"] is None and client.get(url).status_code == 404
    with rt.db.read() as db:
        assert all(row.image is None for row in db.scalars(select(Avatar).where(Avatar.account_id == account_id)))
    assert client.delete("/api/v1/me/avatar").status_code == 401


def test_an_avatar_address_of_another_account_or_a_guess_is_404(client, rt, trusted):
    one, two = register_account(client, rt), register_account(client, rt)
    url = put(client, one, picture(17)).json()["avatar_url"]
    avatar_id = url.rsplit("/", 1)[1]
    assert client.get(f"/u/{two['account']['id']}/avatar/{avatar_id}").status_code == 404
    assert client.get(f"/u/{one['account']['id']}/avatar/{'0' * 32}").status_code == 404


def test_the_account_page_uploads_an_avatar(client, rt, trusted):
    done = register_account(client, rt)
    client.cookies.set("passport_session", done["session"]["token"])
    page = client.get("/account")
    assert 'id="form-avatar"' in page.text
    forged = client.post("/account/avatar", data={"csrf_token": "forged"},
                         files={"avatar": ("a.png", picture(18), "image/png")})
    assert forged.status_code == 403 and me(client, done)["avatar_url"] is None
    bad = client.post("/account/avatar", data={"csrf_token": csrf(client)},
                      files={"avatar": ("a.png", b"not an image", "image/png")})
    assert bad.status_code == 422 and 'id="avatar-file-error"' in bad.text
    saved = client.post("/account/avatar", data={"csrf_token": csrf(client)},
                        files={"avatar": ("a.png", picture(18), "image/png")})
    assert saved.status_code == 200 and 'id="account-avatar"' in saved.text
    removed = client.post("/account/avatar/remove", data={"csrf_token": csrf(client)})
    assert removed.status_code == 200 and 'id="account-avatar"' not in removed.text


def _pending(rt, account_id: str) -> list[Review]:
    with rt.db.read() as db:
        return list(db.scalars(select(Review).where(Review.subject_id == account_id, Review.queue == "profile",
                                                    Review.status == "pending")).all())


def test_uploads_are_rate_limited_per_account(client, rt, trusted):
    done, other = register_account(client, rt), register_account(client, rt)
    for _ in range(20):
        assert put(client, done, b"not an image").status_code == 422  # refused uploads count too
    limited = put(client, done, picture(19))
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert put(client, other, picture(19)).status_code == 200
