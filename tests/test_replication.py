"""Two providers in multi-provider replication behind one portal: the first
dies under a stream of registrations and approvals, nothing is lost or
doubled, and it catches up when it comes back."""
from __future__ import annotations

import secrets
import signal

import ldap3
import pytest

import helpers
from app import create_app
from app.devstack.slapd import SlapdProcess, SlapdSettings, free_port
from helpers import (
    BASE_DN,
    PEOPLE,
    REQUESTS,
    csrf_token,
    decide,
    links_in,
    local_path,
    portal_environment,
    valid_form,
)


@pytest.fixture
def providers(tmp_path):
    root_password, service_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    ports = [free_port(), free_port()]
    urls = tuple(f"ldap://127.0.0.1:{port}" for port in ports)
    servers = []
    for n in (1, 2):
        settings = SlapdSettings(workdir=tmp_path / f"provider{n}", root_password=root_password,
                                 service_password=service_password, server_id=n, providers=urls)
        settings.workdir.mkdir()
        server = SlapdProcess(settings, port=ports[n - 1])
        server.initialise(load=(n == 1))  # the second fills itself by replication
        server.start()
        servers.append(server)
    wait_until(lambda: count(servers[1], BASE_DN) == count(servers[0], BASE_DN))
    yield servers
    for server in servers:
        server.stop()


def connect(server) -> ldap3.Connection:
    return ldap3.Connection(ldap3.Server(server.url, get_info=ldap3.NONE),
                            server.settings.root_dn, server.settings.root_password,
                            auto_bind=True)


def count(server, base: str, search_filter: str = "(objectClass=*)") -> int:
    conn = connect(server)
    conn.search(base, search_filter, attributes=["uid"])
    found = len(conn.entries)
    conn.unbind()
    return found


def wait_until(condition) -> None:
    helpers.wait_until(condition, timeout=10, message="replication did not catch up")


def names(n: int) -> dict:
    letters = "abcdefghij"
    suffix = letters[n // 10] + letters[n % 10]
    return {"account_name": f"user{suffix}", "given_name": "Toru",
            "family_name": f"Iijima{suffix}", "email": f"user{suffix}@kek.example"}


def test_failover_under_a_stream_of_registrations_and_approvals(providers, smtp):
    first, second = providers
    app = create_app(portal_environment(
        first, smtp, PORTAL_LDAP_URLS=f"{first.url} {second.url}", PORTAL_LDAP_BASE_DN=BASE_DN,
        PORTAL_LDAP_BIND_DN=first.settings.service_dn,
        PORTAL_LDAP_BIND_PASSWORD=first.settings.service_password,
        PORTAL_RATE_LIMIT_REGISTER="10000 per minute"))
    smtp.clear()
    client = app.test_client()
    html = client.get("/register").get_data(as_text=True)
    approved = []
    for n in range(30):
        if n == 12:
            first.process.send_signal(signal.SIGKILL)  # mid-stream, no goodbye
            first.process.wait()
        changes = names(n)
        response = client.post("/register", data={"csrf_token": csrf_token(html),
                                                  **valid_form(**changes)})
        assert response.status_code == 302, (n, response.status_code)
        verify = [m for m in smtp.messages if m["To"] == changes["email"]][-1]
        path = local_path(links_in(verify)[0])
        page = client.get(path).get_data(as_text=True)
        client.post(path, data={"csrf_token": csrf_token(page)})
        if n % 3 == 0:
            review = [m for m in smtp.messages if "membership request from" in str(m["Subject"])
                      and changes["family_name"] in str(m["Subject"])][-1]
            path = local_path(links_in(review)[0])
            response = decide(client, path)
            assert "<h1>Approved</h1>" in response.get_data(as_text=True), n
            approved.append(changes["account_name"])

    # Every request and account exactly once, on the surviving provider.
    for n in range(30):
        account = names(n)["account_name"]
        assert count(second, REQUESTS, f"(uid={account})") == 1, account
        assert count(second, PEOPLE, f"(uid={account})") == (1 if account in approved else 0)

    # The first comes back and catches up.
    first.start()
    wait_until(lambda: count(first, REQUESTS, "(uid=user*)") == 30)
    wait_until(lambda: count(first, PEOPLE, "(uid=user*)") == len(approved))
