"""The image's HEALTHCHECK: GET /healthz on the local worker, as a request to the first allowed
host (Django refuses other Host headers). Exit 0 when it answers 200."""

from __future__ import annotations

import os
import sys
import urllib.request

port = os.environ.get("PORT", "8000")
hosts = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
host = next((h.lstrip(".") for h in hosts if h != "*"), "localhost")
request = urllib.request.Request(
    f"http://127.0.0.1:{port}/healthz",
    headers={"Host": host},
)
try:
    with urllib.request.urlopen(request, timeout=4) as response:  # noqa: S310 (fixed local URL)
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # any failure is "unhealthy", with the reason in docker inspect
    print(f"healthz: {exc}", file=sys.stderr)
    sys.exit(1)
