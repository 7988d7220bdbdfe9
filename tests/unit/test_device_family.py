"""The user-agent family that, with the device cookie, makes a "device" (issue 15): coarse, no versions."""

from __future__ import annotations

import pytest

from passport.sessions.devices import ua_family

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
          "Safari/537.36")


@pytest.mark.parametrize(("user_agent", "family"), [
    (CHROME, "Chrome on Windows"),
    (CHROME.replace("131.0.0.0", "132.0.6834.83"), "Chrome on Windows"),  # an update is the same device
    (CHROME + " Edg/131.0.2903.86", "Edge on Windows"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36",
     "Chrome on Linux"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Mobile/15E148 Safari/604.1", "Safari on iOS"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on macOS"),
    ("Mozilla/5.0 (Linux; Android 14; V2238A) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36 "
     "MicroMessenger/8.0.50", "WeChat on Android"),
    ("python-httpx/0.28.1", "Python"),
    ("testclient", "other"),
    (None, "other"),
])
def test_family(user_agent, family):
    assert ua_family(user_agent) == family
