"""The floor app (../shared/peers/floor/app.py: the smallest Flask + ldap3
login, one persistent connection per thread, a rebind with bytes, no TLS,
session, CSRF, audit or mail) served against the bench's own slapd, so
portal and floor are measured on one directory in one run. The file is
loaded as it is; only its server (a constant there) is pointed at the
bench's slapd (BENCH_FLOOR_LDAP_URL)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import ldap3

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "peers" / "floor" / "app.py"
PATH = Path(os.environ.get("BENCH_FLOOR_APP", str(DEFAULT)))

_spec = importlib.util.spec_from_file_location("floor_app", PATH)
floor = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(floor)
floor.SERVER = ldap3.Server(os.environ["BENCH_FLOOR_LDAP_URL"], get_info=ldap3.NONE)
app = floor.app
