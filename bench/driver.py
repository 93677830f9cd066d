"""Closed-loop HTTP driver (stdlib only): C threads, each with its own
keep-alive connection and cookie jar, loop until N iterations are done. An
iteration may do untimed steps first (a login, the GET that gives the CSRF
token, as a browser does) and times one request."""
from __future__ import annotations

import http.client
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class Client:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port, timeout=60)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None):
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt == 2:
                    raise
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, val = value.split(";")[0].partition("=")
                if val:
                    self.cookies[key] = val
                else:
                    self.cookies.pop(key, None)
        return response.status, response.getheader("Location") or "", \
            data.decode("utf-8", "replace")

    def csrf(self, path: str) -> str:
        status, _, page = self.request("GET", path)
        match = CSRF.search(page)
        if not match:
            raise RuntimeError(f"GET {path}: {status}, no CSRF token")
        return match.group(1)

    def timed(self, method: str, path: str, form: dict | None = None):
        t0 = time.perf_counter()
        result = self.request(method, path, form)
        return time.perf_counter() - t0, result


def run(host: str, port: int, iteration, n: int, c: int, start: int = 0,
        prepare=None) -> dict:
    """``iteration(client, i) -> (seconds, ok)``; i runs from start to start+n-1.
    ``prepare(client, k)``: each client's untimed first step (a login), all
    of them done before the clock starts, so the rate counts ``iteration``
    only."""
    lock = threading.Lock()
    ready = threading.Barrier(c + 1)
    counter = iter(range(start, start + n))
    latencies: list[float] = []
    failures = [0]
    first_error: list[str] = []

    def worker(k: int):
        client = Client(host, port)
        try:
            if prepare is not None:
                prepare(client, k)
        finally:
            ready.wait()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                seconds, ok = iteration(client, i)
            except Exception as exc:  # a failed iteration is counted, the run goes on
                seconds, ok = None, False
                with lock:
                    if not first_error:
                        first_error.append(f"{type(exc).__name__}: {exc}")
            with lock:
                if seconds is not None:
                    latencies.append(seconds)
                if not ok:
                    failures[0] += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(c)]
    for t in threads:
        t.start()
    ready.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return summary(latencies, wall, c, failures[0], first_error)


def summary(latencies: list[float], wall: float, c: int, failures: int = 0,
            first_error: list[str] | None = None) -> dict:
    lat = sorted(latencies)

    def pct(p):
        return round(lat[min(len(lat) - 1, int(round(p * (len(lat) - 1))))] * 1000, 1) \
            if lat else None
    return {"c": c, "n": len(lat), "errors": failures, "wall_s": round(wall, 2),
            "rps": round(len(lat) / wall, 1) if wall else 0.0,
            "p50_ms": round(statistics.median(lat) * 1000, 1) if lat else None,
            "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            **({"first_error": first_error[0]} if first_error else {})}


def wait_listening(host: str, port: int, process, timeout: float = 60) -> None:
    """Until something accepts connections on ``port`` (``process`` alive)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {host}:{port}")


def serve_floor(module: str, ldap_url: str, port: int, workers: int, threads: int, log,
                floor_app: str | None = None):
    """gunicorn (gthread, the portal's workers and threads) for one of the
    floor apps (``bench.floor_wsgi:app``, ``bench.form_floor_wsgi:app``)
    against ``ldap_url``; returns the process once it listens. Every worker
    gets the same signing key (BENCH_FLOOR_SECRET), as the portal's do."""
    env = {**os.environ, "BENCH_FLOOR_LDAP_URL": ldap_url,
           "BENCH_FLOOR_SECRET": secrets.token_urlsafe(48),
           **({"BENCH_FLOOR_APP": floor_app} if floor_app else {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
         module], cwd=Path(__file__).resolve().parents[1], env=env,
        stdout=log, stderr=log, start_new_session=True)
    try:
        wait_listening("127.0.0.1", port, process)
    except BaseException:
        process.terminate()
        process.wait(timeout=30)
        raise
    return process
