"""A throwaway shared store for the rate limits (Debian's redis-server) on
loopback, for the dev stack and the tests: every gunicorn worker and every
host counts in the same place, as in production."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from .processes import stop_process
from .slapd import free_port

# Valkey is not packaged in Debian 12; its server speaks the same protocol.
SERVERS = ("valkey-server", "redis-server")


def server_executable() -> str:
    for name in SERVERS:
        found = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/sbin")
        if found:
            return found
    raise RuntimeError("redis-server is not installed (apt-get install redis-server)")


class RateStore:
    """One redis-server with its config, socket-free, on 127.0.0.1:``port``;
    nothing written to disk but its log (counters are short-lived)."""

    def __init__(self, workdir: Path, port: int | None = None):
        self.workdir = Path(workdir)
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def uri(self, db: int = 0) -> str:
        """The storage URI of database ``db`` (separate counters)."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def _config(self) -> str:
        return "\n".join([
            "bind 127.0.0.1",
            f"port {self.port}",
            "protected-mode yes",
            "daemonize no",
            f"dir {self.workdir}",
            'save ""',
            "appendonly no",
            f"logfile {self.workdir / 'redis.log'}",
            "databases 16",
        ]) + "\n"

    def start(self, attempts: int = 5) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        fixed = self.port is not None
        for _ in range(attempts):
            if not fixed:
                self.port = free_port()
            conf = self.workdir / "redis.conf"
            conf.write_text(self._config())
            self.process = subprocess.Popen([server_executable(), str(conf)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                            start_new_session=True)
            if self._wait_ready():
                return
            self.stop()
            if fixed:
                break
        raise RuntimeError(f"redis-server did not start; see {self.workdir / 'redis.log'}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _wait_ready(self, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if self.ping():
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None
