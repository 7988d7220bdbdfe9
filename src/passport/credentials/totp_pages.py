"""Pages: the TOTP settings (QR code, confirm, disable)."""

from __future__ import annotations
