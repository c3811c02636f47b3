# ruff: noqa: INP001  # a script copied into the image, not a module of a package
"""The image's health check: the service's liveness route /livez must answer 200 (stdlib only)."""

import os
import sys
import urllib.request

url = f"http://127.0.0.1:{os.environ.get('AGENTFLUX_HEALTH_PORT', '8000')}/livez"
try:
    with urllib.request.urlopen(url, timeout=3) as response:  # a fixed local URL
        sys.exit(0 if response.status == 200 else 1)  # noqa: PLR2004  # HTTP OK
except OSError:
    sys.exit(1)
