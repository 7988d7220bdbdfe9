"""TOTP second factor (RFC 6238): enrol, confirm, disable, verify with replay protection."""

from __future__ import annotations
