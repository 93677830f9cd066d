"""make bench-cost: what one request costs the portal's own process.

On a bench stack (bench/run.py's Stack: slapd with the production
configuration, BENCH_MEMBERS members, default 10,000), the app runs inside
this process (Flask's test client, one thread, no network in front), so the
CPU time of each request is the portal's alone (not slapd's, whose share
the raw rates of `make bench` show). For each flow: wall and CPU
milliseconds per request and the directory operations per request
(searches, writes and member binds, counted at the connection).

Then each flow runs again under cProfile (other members, links and
requests), and its CPU is split by where it is spent: templates, forms,
the LDAP client's encoding and decoding, Flask and Werkzeug, signing,
translations, the rate limits' store, the strength check, the portal's own
code. Time blocked on a socket (slapd's, redis's answer) is left out, and a
builtin or standard-library function counts for whichever of those called
it. The floor app (../shared/peers/floor/) is measured the same way on the
same slapd, so the table shows the CPU a login costs above the floor and
on what. Written to bench/results/cost.json and cost.md (BENCH_LABEL:
cost)."""
from __future__ import annotations

import cProfile
import json
import os
import pstats
import re
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.services.links import ResetLink, ReviewLink  # noqa: E402
from bench import ldif  # noqa: E402
from bench.run import RESULTS, Stack, machine  # noqa: E402

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')

# Where a request's CPU goes: the first component whose marker is in a
# function's file name (site-packages/<package>/, the portal's own tree).
COMPONENTS = (
    ("templates", ("/jinja2/", "/markupsafe/", f"{ROOT}/templates/")),
    ("forms", ("/wtforms/", "/flask_wtf/", f"{ROOT}/app/web/widgets.py")),
    ("LDAP client", ("/ldap3/", "/pyasn1/")),
    ("rate limits (store)", ("/flask_limiter/", "/limits/", "/redis/")),
    ("translations", ("/flask_babel/", "/babel/", "gettext.py")),
    ("signing (session, CSRF, links)", ("/itsdangerous/", "hashlib", "hmac")),
    ("strength check", ("/zxcvbn/",)),
    ("mail (outbox message)", ("/flask_mail", "/email/")),
    ("Flask and Werkzeug", ("/flask/", "/werkzeug/", "/blinker/")),
    ("portal code", (f"{ROOT}/app/",)),
    ("floor app", ("/floor/app.py", f"{ROOT}/bench/form_floor_wsgi.py")),
)
# Waiting, not computing: the answer of slapd or redis.
BLOCKING = ("method 'read' of '_ssl._SSLSocket'", "method 'recv' of '_socket.socket'",
            "method 'recv_into' of '_socket.socket'", "select.", "method 'poll'",
            "built-in method time.sleep", "method 'do_handshake'")


def _component(function, stats, depth=0) -> dict[str, float]:
    """The function's own time by component: its own file's, or (a builtin,
    the standard library) its callers', up to three calls up."""
    filename, _, name = function
    where = f"{filename}:{name}"
    for component, markers in COMPONENTS:
        if any(marker in where for marker in markers):
            return {component: 1.0}
    callers = stats[function][4]
    if depth >= 3 or not callers:
        return {"other (standard library)": 1.0}
    total = sum(entry[2] for entry in callers.values()) or 1.0
    shares: dict[str, float] = {}
    for caller, entry in callers.items():
        for component, share in _component(caller, stats, depth + 1).items():
            shares[component] = shares.get(component, 0.0) + share * entry[2] / total
    return shares


def breakdown(profile: cProfile.Profile) -> dict[str, float]:
    """Shares of the profiled computing time by component (blocking calls left out)."""
    stats = pstats.Stats(profile).stats
    spent: dict[str, float] = {}
    for function, (_, _, own, _, _) in stats.items():
        if any(marker in function[2] for marker in BLOCKING):
            continue
        for component, share in _component(function, stats).items():
            spent[component] = spent.get(component, 0.0) + own * share
    total = sum(spent.values()) or 1.0
    return {component: value / total for component, value in
            sorted(spent.items(), key=lambda item: -item[1])}


def main() -> int:
    members = int(os.environ.get("BENCH_MEMBERS", "10000"))
    label = os.environ.get("BENCH_LABEL", "cost")
    os.environ.setdefault("BENCH_FLOOR", "0")
    stack = Stack(members, 1000, 700, max(1 << 30, members * 8192))
    result = {"members": members, "machine": machine(), "flows": {}}
    try:
        os.environ.update(stack.portal_env())
        from app import create_app
        app = create_app()
        directory = app.extensions["portal"].directory
        operations = [0]
        call, bind_as = directory._call, directory._bind_as

        def counted_call(operation):
            operations[0] += 1
            return call(operation)

        def counted_bind_as(*args, **kwargs):
            operations[0] += 1
            return bind_as(*args, **kwargs)

        directory._call, directory._bind_as = counted_call, counted_bind_as

        def measure(name, run, n, prepare=None):
            """n requests of the flow (i = 0..n-1), then n more (i = n..2n-1)
            under the profiler for the breakdown."""
            wall = cpu = 0.0
            total = 0
            for i in range(n):
                if prepare:
                    prepare(i)
                operations[0] = 0
                w0, c0 = time.perf_counter(), time.process_time()
                run(i)
                wall += time.perf_counter() - w0
                cpu += time.process_time() - c0
                total += operations[0]
            profile = cProfile.Profile()
            for i in range(n, 2 * n):
                if prepare:
                    prepare(i)
                profile.enable()
                run(i)
                profile.disable()
            cpu_ms = 1000 * cpu / n
            if os.environ.get("BENCH_PROFILE_DIR"):  # for pstats / snakeviz
                profile.dump_stats(Path(os.environ["BENCH_PROFILE_DIR"]) / (
                    re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + ".prof"))
            result["flows"][name] = {
                "wall_ms": round(1000 * wall / n, 1), "cpu_ms": round(cpu_ms, 1),
                "directory_operations": round(total / n, 1), "n": n,
                "cpu_ms_by_component": {component: round(cpu_ms * share, 2) for component, share
                                        in breakdown(profile).items()}}
            print(name, result["flows"][name], flush=True)

        def csrf(client, path):
            return CSRF.search(client.get(path).get_data(as_text=True)).group(1)

        member, page, state = app.test_client(), app.test_client(), {}

        def login_flow(client, name_field):
            """(before, run) of a login on ``client``: the form's token, then the POST."""
            def before(i):
                client.delete_cookie("session")
                state["token"] = csrf(client, "/login")

            def run(i):
                response = client.post("/login", data={
                    "csrf_token": state["token"], name_field: ldif.member_name(1 + i % 50),
                    "password": ldif.MEMBER_PASSWORD})
                assert response.status_code == 302, response.status_code
            return before, run

        before_login, login = login_flow(member, "account_name")

        def get(client, path):
            def run(i):
                assert client.get(path).status_code == 200
            return run

        def before_approve(i):
            request_id, approver = stack.reviews[i]
            state["path"] = "/review/" + stack.links.token(ReviewLink(request_id, approver, 0))
            state["token"] = csrf(page, state["path"])

        def approve(i):
            response = page.post(state["path"], data={"csrf_token": state["token"],
                                                      "decision": "approve"})
            assert response.status_code == 200, response.status_code

        def before_reset(i):
            page.delete_cookie("session")
            state["path"] = "/password/reset/" + stack.links.token(ResetLink(
                ldif.member_name(401 + i), ldif.RESET_NONCE,
                ldif._t(ldif.password_changed(stack.now))))
            state["token"] = csrf(page, state["path"])

        def reset(i):
            new = f"Kq7#vLp2-reset-{i}-zRwT9m"
            response = page.post(state["path"], data={
                "csrf_token": state["token"], "password": new, "password_confirm": new})
            assert response.status_code == 200 and b"csrf_token" not in response.data

        def before_change(i):
            member.delete_cookie("session")
            token = csrf(member, "/login")
            response = member.post("/login", data={
                "csrf_token": token, "account_name": ldif.member_name(101 + i),
                "password": ldif.MEMBER_PASSWORD})
            assert response.status_code == 302, response.status_code
            state["token"] = csrf(member, "/account/password")

        def change(i):
            new = f"Kq7#vLp2-change-{i}-zRwT9m"
            response = member.post("/account/password", data={
                "csrf_token": state["token"], "current_password": ldif.MEMBER_PASSWORD,
                "password": new, "password_confirm": new})
            assert response.status_code == 302, response.status_code

        for i in range(5):  # warm: caches, compiled templates, connections
            before_login(i)
            login(i)
            member.get("/account")
            page.get("/register")
        measure("POST /login", login, 60, before_login)
        measure("GET /account", get(member, "/account"), 150)
        measure("GET /register", get(page, "/register"), 150)
        measure("GET /login", get(page, "/login"), 150)
        measure("GET /account/password", get(member, "/account/password"), 150)
        measure("POST password change", change, 40, before_change)
        measure("POST reset link", reset, 40, before_reset)
        before_approve(0)
        approve(0)
        measure("POST approve", lambda i: approve(i + 1), 60, lambda i: before_approve(i + 1))

        # The floor app on the same slapd (its own connection, no TLS).
        os.environ["BENCH_FLOOR_LDAP_URL"] = stack.slapd.url
        from bench.floor_wsgi import app as floor_app
        floor = floor_app.test_client()

        def floor_login(i):
            response = floor.post("/login", data={"login": ldif.member_name(1 + i % 50),
                                                  "password": ldif.MEMBER_PASSWORD})
            assert response.status_code == 302, response.status_code

        floor_login(0)
        measure("floor app POST /login", floor_login, 60)
        measure("floor app GET of a page it has not", lambda i: floor.get("/nothing"), 150)
        # The form floor (bench/form_floor_wsgi.py): the floor's login with
        # the form, CSRF token and session that Flask-WTF adds.
        os.environ.setdefault("BENCH_FLOOR_SECRET", secrets.token_urlsafe(48))
        from bench.form_floor_wsgi import app as form_floor_app
        form_floor = form_floor_app.test_client()
        before_form_floor_login, form_floor_login = login_flow(form_floor, "login")
        before_form_floor_login(0)
        form_floor_login(0)
        measure("form floor GET /login", get(form_floor, "/login"), 150)
        measure("form floor POST /login", form_floor_login, 60, before_form_floor_login)
    finally:
        stack.stop()
    result["machine"]["loadavg_after"] = Path("/proc/loadavg").read_text().strip()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{label}.json").write_text(json.dumps(result, indent=1, default=str))
    rows = "\n".join(f"| {name} | {f['cpu_ms']} | {f['wall_ms']} | {f['directory_operations']} |"
                     for name, f in result["flows"].items())
    m = result["machine"]
    text = (f"# make bench-cost ({members:,} members)\n\nMachine: {m['nproc']} cores, load "
            f"before {m['loadavg_before']}, after {m['loadavg_after']}.\n\n"
            "| flow | CPU ms per request (portal process) | wall ms | directory operations |\n"
            "|---|---|---|---|\n" + rows + "\n")
    names = list(result["flows"])
    components = [c for c, _ in COMPONENTS] + ["other (standard library)"]
    table = "\n".join(
        f"| {component} | " + " | ".join(
            str(result["flows"][name]["cpu_ms_by_component"].get(component, 0.0))
            for name in names) + " |" for component in components)
    text += ("\nWhere the CPU goes (ms per request: each flow's CPU above, split as a "
             "profiled second pass spent it; time waiting on slapd or redis left out):\n\n"
             "| component | " + " | ".join(names) + " |\n|---|" + "---|" * len(names) + "\n"
             + table + "\n")
    (RESULTS / f"{label}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
