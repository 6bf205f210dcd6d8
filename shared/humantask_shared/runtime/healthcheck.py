"""`python -m humantask_shared.runtime.healthcheck`: the image's HEALTHCHECK.

Exits 0 when this container's service answers `/readyz` with 200 on its HEALTH_PORT
(8081 unless set: every service serves its health routes there), 1 otherwise, saying why.
Standard library only, so that a check costs a Python start and one request.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> None:
    url = f"http://127.0.0.1:{os.environ.get('HEALTH_PORT') or '8081'}/readyz"
    # No proxy: the service is in this container, whatever *_proxy variables say.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=4) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        sys.stderr.write(f"{url}: {exc}\n")
        raise SystemExit(1) from None
    if status != 200:
        sys.stderr.write(f"{url}: {status}\n")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
