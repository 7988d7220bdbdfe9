"""Avatars as the engine sees them (issue 17): decode with Pillow within limits, refuse animations,
re-encode (no metadata survives: EXIF, GPS, comments, colour profiles), detect QR codes (zxing-cpp:
a QR code in an avatar is a contact or an advertisement) and compare the perceptual hash (imagehash)
with the operators' blocklist."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from datetime import datetime

import imagehash
import zxingcpp
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from passport import errors
from passport.moderation.lexicon import CATEGORIES
from passport.moderation.models import ImageBlock

FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
CONTENT_TYPE = "image/jpeg"
_QR = (zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.MicroQRCode, zxingcpp.BarcodeFormat.RMQRCode)


@dataclass(frozen=True)
class Processed:
    data: bytes  # the re-encoded JPEG
    width: int
    height: int
    phash: str  # 16 hex digits
    qr: bool  # a QR code was found (in the upload as sent)


def invalid_image() -> errors.DomainError:
    return errors.invalid("invalid_image", "Upload a JPEG, PNG, WebP or GIF image.", "avatar")


def image_too_large(limit: str) -> errors.DomainError:
    return errors.DomainError("image_too_large", "The image is too large.", 422,
                              [errors.FieldError("avatar", "image_too_large", "The image is too large.")],
                              extra={"limit": limit})


def process(data: bytes, *, max_bytes: int, max_pixels: int, size: int) -> Processed:
    """Decode, check and re-encode an upload; 422 ``invalid_image``, ``image_too_large`` (``limit``:
    ``bytes`` or ``dimensions``) or ``animated_image``."""
    if not data:
        raise errors.invalid("file_required", "Choose an image to upload.", "avatar")
    if len(data) > max_bytes:
        raise image_too_large("bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            if max(image.size) > max_pixels:  # read from the header, before any pixel is decoded
                raise image_too_large("dimensions")
            if getattr(image, "n_frames", 1) > 1:
                raise errors.invalid("animated_image", "Animated images cannot be avatars; upload a still image.",
                                     "avatar")
            image.load()
    except errors.DomainError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise image_too_large("dimensions") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise invalid_image() from None
    qr = has_qr_code(image)
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    else:
        image = image.convert("RGB")
    image = ImageOps.fit(image, (size, size)) if min(image.size) >= size else _square(image)
    # Pillow carries some metadata (a JPEG comment, the ICC profile) over in ``info``: none is written.
    image.info = {}
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88, optimize=True, exif=b"", icc_profile=None, comment=b"")
    return Processed(out.getvalue(), image.width, image.height, str(imagehash.phash(image)),
                     qr or has_qr_code(image))


def _square(image: Image.Image) -> Image.Image:
    side = min(image.size)
    return ImageOps.fit(image, (side, side))


def has_qr_code(image: Image.Image) -> bool:
    try:
        return bool(zxingcpp.read_barcodes(image.convert("L"), formats=_QR))
    except (ValueError, RuntimeError):
        return False


def distance(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def blocked(db: Session, phash: str, max_distance: int) -> ImageBlock | None:
    """The blocklisted image closest to ``phash`` within ``max_distance`` bits, if any."""
    rows = db.scalars(select(ImageBlock)).all()
    close = [(distance(phash, row.phash), row.id, row) for row in rows if distance(phash, row.phash) <= max_distance]
    return min(close)[2] if close else None


def clean_hash(raw: str) -> str:
    value = (raw or "").strip().lower()
    if len(value) != 16 or any(c not in "0123456789abcdef" for c in value):
        raise errors.invalid("invalid_hash", "A perceptual hash is 16 hexadecimal digits.", "phash")
    return value


def add_block(db: Session, phash: str, category: str, note: str | None, added_by: str | None,
              at: datetime) -> ImageBlock:
    if category not in CATEGORIES:
        raise errors.invalid("invalid_category", "Choose one of the categories.", "category")
    row = ImageBlock(phash=phash, category=category, note=(note or "").strip()[:500] or None, added_by=added_by,
                     created_at=at)
    db.add(row)
    try:
        db.flush()
    except IntegrityError:
        raise errors.DomainError("already_blocked", "This image is already on the blocklist.", 409) from None
    return row
