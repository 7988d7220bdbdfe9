"""Pages: forgot password, change password, recovery key, freeze and unfreeze."""

from __future__ import annotations
