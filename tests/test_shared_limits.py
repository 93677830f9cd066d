"""Rate limits hold across gunicorn workers: their counts live in the shared
store (redis-server, tests/fixtures/ratestore.py), not in each process."""
from __future__ import annotations

import http.cookiejar
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from fixtures.web import running_portal
from helpers import csrf_token, wait_until


def _opener():
    return urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def _status(opener, url: str, data: dict | None = None) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(url, body, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_registration_limit_holds_across_three_workers(slapd, smtp, ratestore, root,
                                                           tmp_path):
    with running_portal(slapd, smtp, tmp_path, workers=3, sender=False,
                        PORTAL_RATELIMIT_STORAGE_URI=ratestore.uri(2),
                        PORTAL_RATE_LIMIT_REGISTER="20 per hour") as portal:
        openers = [_opener() for _ in range(15)]
        tokens = [csrf_token(_status(o, portal.url + "/register")[1]) for o in openers]

        def register(n: int) -> int:
            # An incomplete form: it counts like any other registration sent.
            return _status(openers[n % 15], portal.url + "/register",
                           {"csrf_token": tokens[n % 15], "account_name": "x"})[0]

        with ThreadPoolExecutor(15) as pool:
            statuses = list(pool.map(register, range(45)))
    assert sorted(set(statuses)) == [200, 429]
    assert statuses.count(200) == 20, statuses


def test_gunicorn_warns_about_memory_storage_with_several_workers(slapd, smtp, root, tmp_path):
    with running_portal(slapd, smtp, tmp_path, workers=2, sender=False,
                        PORTAL_RATELIMIT_STORAGE_URI="memory://") as portal:
        wait_until(lambda: "memory:// with 2 workers" in portal.log.read_text(),
                   message="gunicorn did not warn")
    assert "every rate limit is 2 times too high" in portal.log.read_text()
