"""Make sure Debian's Chromium is there for the browser tests (never a downloaded browser build).

Installs it with apt when we are root on Debian; otherwise says how, and the browser tests skip
(except under CI, where they fail instead of skipping)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

CHROMIUM = "/usr/bin/chromium"

if os.path.exists(CHROMIUM):
    sys.exit(0)
if os.geteuid() == 0 and shutil.which("apt-get"):
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
    sys.exit(0)
print(f"{CHROMIUM} is missing: install Debian's chromium (sudo apt-get install chromium) "
      "to run the browser tests; they are skipped until then.", file=sys.stderr)
