"""The images of Containerfile and what compose.yaml runs, on this machine's podman.

The directory's templates are the dev stack's generator output (checked
without containers); then both images are built on BASE_IMAGE (by default
the debootstrapped localhost/debian:bookworm that `make test` makes), run
on free loopback ports (host network) with a catcher container for mail, and
a member registered through the portal container binds to the directory
container, also after the directory container was replaced (data volume).
"""
from __future__ import annotations

import http.cookiejar
import os
import re
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.devstack.containers import (
    TEMPLATE_DIR,
    TLS_FILE_DIRECTIVES,
    container_settings,
    write_templates,
)
from app.devstack.slapd import (
    DEMO_HELPDESK_PASSWORD,
    DEMO_IR_PASSWORD,
    SCHEMA_DIR,
    anonymous_auth_lines,
    free_port,
    render_bootstrap_ldif,
    render_slapd_conf,
)
from helpers import STRONG_PASSWORD, URL_RE, csrf_token, valid_form

ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT = ROOT / "containers" / "directory" / "entrypoint.sh"
BASE_IMAGE = os.environ.get("PORTAL_TEST_BASE_IMAGE", "localhost/debian:bookworm")
DIRECTORY_IMAGE = "localhost/membership-portal-directory:test"
PORTAL_IMAGE = "localhost/membership-portal:test"
# What podman needs on these machines (see README, "Containers").
PODMAN = ["podman", "--runtime", "/usr/sbin/runc"]
HOST_FLAGS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network=host"]

BASE_DN = "dc=portal,dc=test"
ORGANISATION = "Container Test Collaboration"
_HASH = re.compile(r"\{ARGON2\}\$argon2[a-z]*\$\S+")


def _named_hashes(text: str, passwords: dict[str, str]) -> str:
    """Each {ARGON2} hash -> <hash of NAME> for the password it verifies."""
    def name(match: re.Match) -> str:
        for label, password in passwords.items():
            try:
                PasswordHasher().verify(match.group(0).removeprefix("{ARGON2}"), password)
                return f"<hash of {label}>"
            except (VerificationError, InvalidHashError):
                continue
        return "<hash of an unknown password>"
    return _HASH.sub(name, text)


def _significant_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_the_entrypoint_renders_what_the_generator_gives_for_the_same_values(tmp_path):
    """The image's slapd.conf and tree are the dev stack's, value for value."""
    templates, rendered = tmp_path / "templates", tmp_path / "rendered"
    rendered.mkdir()
    write_templates(templates)
    values = dict(base_dn="dc=physics,dc=example,dc=net", organisation="Physics & Co (\\1 $x)",
                  mail_domain="physics.example.net", main_group="collab",
                  root_password="root-" + secrets.token_urlsafe(8),
                  service_password="svc-" + secrets.token_urlsafe(8))
    env = {"PATH": os.environ["PATH"], "LDAP_TEMPLATE_DIR": str(templates),
           "LDAP_BASE_DN": values["base_dn"], "LDAP_ORGANISATION": values["organisation"],
           "LDAP_MAIL_DOMAIN": values["mail_domain"], "LDAP_MAIN_GROUP": values["main_group"],
           "LDAP_ROOT_PASSWORD": values["root_password"],
           "LDAP_SERVICE_PASSWORD_FILE": str(tmp_path / "service-password"),
           "LDAP_DEMO": "true"}
    (tmp_path / "service-password").write_text(values["service_password"] + "\n")
    subprocess.run(["sh", str(ENTRYPOINT), "render", str(rendered)], env=env, check=True)

    settings = container_settings(demo=True, **values)
    passwords = {"root": values["root_password"], "service": values["service_password"],
                 "IR": DEMO_IR_PASSWORD, "helpdesk": DEMO_HELPDESK_PASSWORD}
    expected_conf = render_slapd_conf(settings).replace(
        str(SCHEMA_DIR / "portal.schema"), str(TEMPLATE_DIR / "portal.schema"))
    expected_conf = re.sub(rf"^rootpw {re.escape(values['root_password'])}$",
                           "rootpw <hash of root>", expected_conf, flags=re.M)
    # Certificate files are configured only when they are mounted (not here).
    expected_conf = "".join(line for line in expected_conf.splitlines(keepends=True)
                            if not line.startswith(TLS_FILE_DIRECTIVES))
    conf = (rendered / "slapd.conf").read_text()
    assert "rootpw <hash of root>" in _named_hashes(conf, passwords)
    assert _significant_lines(_named_hashes(conf, passwords)) == \
        _significant_lines(_named_hashes(expected_conf, passwords))
    ldif = _named_hashes((rendered / "bootstrap.ldif").read_text(), passwords)
    assert ldif == _named_hashes(render_bootstrap_ldif(settings), passwords)
    assert "<hash of service>" in ldif and "<hash of IR>" in ldif
    assert "unknown password" not in ldif
    assert (templates / "portal.schema").read_text() == (SCHEMA_DIR / "portal.schema").read_text()


def test_without_demo_data_the_tree_is_the_generators_bootstrap_alone(tmp_path):
    templates, rendered = tmp_path / "templates", tmp_path / "rendered"
    rendered.mkdir()
    write_templates(templates)
    env = {"PATH": os.environ["PATH"], "LDAP_TEMPLATE_DIR": str(templates),
           "LDAP_ROOT_PASSWORD": "r", "LDAP_SERVICE_PASSWORD": "s"}
    subprocess.run(["sh", str(ENTRYPOINT), "render", str(rendered)], env=env, check=True)
    ldif = _named_hashes((rendered / "bootstrap.ldif").read_text(), {"service": "s"})
    expected = render_bootstrap_ldif(container_settings(demo=False, service_password="s"))
    assert ldif == _named_hashes(expected, {"service": "s"})
    assert "irkek" not in ldif


def test_require_tls_gives_the_image_productions_rule_for_binds(tmp_path):
    """LDAP_REQUIRE_TLS=true: the image's slapd.conf takes production's rule
    (password binds without TLS from loopback and ldapi only, the lines
    config/slapd/ has, which tests/test_slapd_config.py runs); refused
    without certificate files; by default binds are accepted from anywhere."""
    templates = tmp_path / "templates"
    write_templates(templates)
    tls = tmp_path / "tls"
    tls.mkdir()
    for name in ("tls.crt", "tls.key"):
        (tls / name).write_text("not used by render\n")
    env = {"PATH": os.environ["PATH"], "LDAP_TEMPLATE_DIR": str(templates),
           "LDAP_ROOT_PASSWORD": "r", "LDAP_SERVICE_PASSWORD": "s",
           "LDAP_CONF_DIR": str(tmp_path / "conf")}

    def render(name: str, **extra) -> subprocess.CompletedProcess:
        (tmp_path / name).mkdir()
        return subprocess.run(["sh", str(ENTRYPOINT), "render", str(tmp_path / name)],
                              env={**env, **extra}, capture_output=True, text=True)

    strict = anonymous_auth_lines(True) + "\n"
    assert render("strict", LDAP_REQUIRE_TLS="true", LDAP_TLS_DIR=str(tls)).returncode == 0
    conf = (tmp_path / "strict" / "slapd.conf").read_text()
    assert strict in conf and anonymous_auth_lines(False) + "\n" not in conf
    assert strict in (ROOT / "config" / "slapd" / "slapd.conf.template").read_text()
    for name, extra in (("default", {}), ("off", {"LDAP_REQUIRE_TLS": "false"})):
        assert render(name, LDAP_TLS_DIR=str(tls), **extra).returncode == 0
        conf = (tmp_path / name / "slapd.conf").read_text()
        assert anonymous_auth_lines(False) + "\n" in conf and strict not in conf
    refused = render("no-certificates", LDAP_REQUIRE_TLS="true",
                     LDAP_TLS_DIR=str(tmp_path / "none"))
    assert refused.returncode != 0 and "needs tls.crt and tls.key" in refused.stderr
    assert render("bad", LDAP_REQUIRE_TLS="maybe").returncode != 0


def test_the_entrypoint_refuses_a_missing_password_and_a_foreign_base(tmp_path):
    write_templates(tmp_path)
    base = {"PATH": os.environ["PATH"], "LDAP_TEMPLATE_DIR": str(tmp_path)}
    for env, message in (({"LDAP_ROOT_PASSWORD": "r"}, "LDAP_SERVICE_PASSWORD"),
                         ({"LDAP_ROOT_PASSWORD": "r", "LDAP_SERVICE_PASSWORD": "s",
                           "LDAP_BASE_DN": "o=example"}, "must start with dc=")):
        result = subprocess.run(["sh", str(ENTRYPOINT), "render", str(tmp_path)],
                                env={**base, **env}, capture_output=True, text=True)
        assert result.returncode != 0 and message in result.stderr


# -- the images ----------------------------------------------------------------------

def podman(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def images():
    if shutil.which("podman") is None:
        pytest.fail("podman is missing: `make test` installs podman, runc and debootstrap as root")
    if podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        subprocess.run(["sh", str(ROOT / "containers" / "base-image.sh"), BASE_IMAGE],
                       check=True, timeout=600)
    started = time.monotonic()
    for target, tag in (("directory", DIRECTORY_IMAGE), ("portal", PORTAL_IMAGE)):
        podman("build", *HOST_FLAGS, "--format", "docker", "--build-arg",
               f"BASE_IMAGE={BASE_IMAGE}", "--target", target, "-t", tag,
               "-f", str(ROOT / "Containerfile"), str(ROOT), timeout=900)
    print(f"images built in {time.monotonic() - started:.1f} s")


class Stack:
    """The containers of compose.yaml (but the jobs), on loopback ports of the host."""

    def __init__(self, work: Path):
        tag = secrets.token_hex(4)
        self.names = {part: f"portal-test-{part}-{tag}" for part in ("ldap", "mail", "portal",
                                                                         "sender")}
        self.volume = f"portal-test-ldap-{tag}"
        self.ldap_port, self.ldaps_port, self.smtp_port, self.web_port = (
            free_port(), free_port(), free_port(), free_port())
        self.root_password = "root-" + secrets.token_urlsafe(12)
        self.service_password = "svc-" + secrets.token_urlsafe(12)
        self.mail_dir = work / "mail"
        self.mail_dir.mkdir()
        self.mail_dir.chmod(0o777)  # written by the catcher's non-root user
        self.tls_dir = work / "tls"
        self.tls_dir.mkdir()
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-keyout", str(self.tls_dir / "tls.key"),
                        "-out", str(self.tls_dir / "tls.crt")], check=True, capture_output=True)
        self.started: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def ldap_url(self) -> str:
        return f"ldap://127.0.0.1:{self.ldap_port}"

    def run_directory(self) -> None:
        name = self.names["ldap"]
        podman("run", "-d", "--name", name, *HOST_FLAGS,
               "-v", f"{self.volume}:/var/lib/ldap-portal/data",
               "-v", f"{self.tls_dir}:/etc/ldap/tls:ro",
               "-e", f"LDAP_PORT={self.ldap_port}", "-e", f"LDAPS_PORT={self.ldaps_port}",
               "-e", f"LDAP_BASE_DN={BASE_DN}", "-e", f"LDAP_ORGANISATION={ORGANISATION}",
               "-e", f"LDAP_ROOT_PASSWORD={self.root_password}",
               "-e", f"LDAP_SERVICE_PASSWORD={self.service_password}",
               "-e", "LDAP_DEMO=true", DIRECTORY_IMAGE)
        self.started.append(name)
        self.wait_healthy(name)

    def run_mail(self) -> None:
        name = self.names["mail"]
        podman("run", "-d", "--name", name, *HOST_FLAGS, "--no-healthcheck",
               "-v", f"{self.mail_dir}:/opt/portal/var/mail", PORTAL_IMAGE,
               "python", "-m", "app.devstack.containers", "mailcatcher", "--host", "127.0.0.1",
               "--port", str(self.smtp_port), "--folder", "/opt/portal/var/mail")
        self.started.append(name)

    def portal_env(self) -> dict[str, str]:
        return {
            "PORTAL_ENV": "dev",
            "PORTAL_SECRET_KEY": secrets.token_urlsafe(48),
            "PORTAL_BASE_URL": self.url,
            "PORTAL_LDAP_URLS": self.ldap_url,
            "PORTAL_LDAP_BASE_DN": BASE_DN,
            "PORTAL_LDAP_BIND_DN": f"cn=portal,ou=services,{BASE_DN}",
            "PORTAL_LDAP_BIND_PASSWORD": self.service_password,
            "PORTAL_SMTP_HOST": "127.0.0.1",
            "PORTAL_SMTP_PORT": str(self.smtp_port),
            "PORTAL_MAIL_FROM": "Registry <registry@example.org>",
            "PORTAL_COLLABORATION_NAME": ORGANISATION,
            "PORTAL_MAIL_DOMAIN": "example.org",
            "PORTAL_HELPDESK_EMAIL": "helpdesk@example.org",
            # Caught mail at /dev/mail, as in compose.yaml.
            "PORTAL_DEV_MAIL_DIR": "/opt/portal/var/mail",
            "PORT": str(self.web_port),
        }

    def run_portal(self) -> None:
        name = self.names["portal"]
        env = self.portal_env()
        podman("run", "-d", "--name", name, *HOST_FLAGS,
               "-v", f"{self.mail_dir}:/opt/portal/var/mail:ro",
               *[arg for key, value in env.items() for arg in ("-e", f"{key}={value}")],
               PORTAL_IMAGE)
        self.started.append(name)
        self.wait_healthy(name)

    def run_sender(self) -> None:
        """The mail sender, as compose.yaml's sender service: the portal
        only queues mail in the directory's outbox."""
        name = self.names["sender"]
        env = self.portal_env()
        podman("run", "-d", "--name", name, *HOST_FLAGS, "--no-healthcheck",
               *[arg for key, value in env.items() for arg in ("-e", f"{key}={value}")],
               PORTAL_IMAGE, "flask", "--app", "wsgi", "mail", "send", "--loop")
        self.started.append(name)

    def wait_healthy(self, name: str, timeout: float = 60) -> None:
        """The image's own HEALTHCHECK, run by hand (no systemd timers here)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if podman("healthcheck", "run", name, check=False).returncode == 0:
                return
            state = podman("inspect", "-f", "{{.State.Status}}", name, check=False).stdout.strip()
            if state not in ("running", "created"):
                break
            time.sleep(0.5)
        logs = podman("logs", name, check=False)
        raise AssertionError(f"{name} did not become healthy:\n{logs.stdout}{logs.stderr}")

    def remove(self, name: str) -> None:
        podman("rm", "-f", "-t", "5", name, check=False)
        if name in self.started:
            self.started.remove(name)

    def cleanup(self) -> None:
        for name in list(self.started):
            self.remove(name)
        podman("volume", "rm", "-f", self.volume, check=False)

def links_in(message) -> list[str]:
    return URL_RE.findall(message.get_body(preferencelist=("plain",)).get_content())


def mails_to(folder: Path, address: str, subject: str = "", timeout: float = 20) -> list:
    """Caught mail (the catcher's .eml files) to ``address``; waits for the first."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for path in sorted(folder.glob("*.eml")):
            message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            if address in str(message["To"]) and subject in str(message["Subject"]):
                found.append(message)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


class Browser:
    """Cookies and CSRF tokens over real HTTP."""

    def __init__(self):
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def open(self, url: str, data: dict | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(url, body, timeout=20) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def submit(self, url: str, **fields) -> tuple[int, str]:
        status, page = self.open(url)
        assert status == 200, page
        return self.open(url, {"csrf_token": csrf_token(page), **fields})


def ldapwhoami(url: str, dn: str, password: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["ldapwhoami", "-x", "-H", url, "-D", dn, "-w", password],
                          capture_output=True, text=True, timeout=20,
                          env={**os.environ, **env})


def root_search(stack: Stack, base: str, *attributes: str) -> str:
    return subprocess.run(
        ["ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", stack.ldap_url,
         "-D", f"cn=admin,{BASE_DN}", "-w", stack.root_password, "-b", base, *attributes],
        capture_output=True, text=True, check=True, timeout=20).stdout


@pytest.fixture
def stack(images, tmp_path):
    stack = Stack(tmp_path)
    try:
        stack.run_directory()
        stack.run_mail()
        stack.run_portal()
        stack.run_sender()
        yield stack
    finally:
        stack.cleanup()


def register_confirm_approve(web_url: str, mail_dir: Path) -> None:
    """Register through the portal, confirm from the caught mail, approve as
    the demo IR of KEK from the review mail."""
    browser = Browser()
    status, page = browser.submit(web_url + "/register", **valid_form())
    assert status == 200 and "We received your registration for" in page, page
    [confirmation] = mails_to(mail_dir, "toru.iijima@kek.example", "confirm your e-mail address")
    verify_url, _status_url = links_in(confirmation)
    assert verify_url.startswith(web_url + "/register/verify/")
    status, _ = browser.submit(verify_url)
    assert status == 200
    [review] = mails_to(mail_dir, "toru.sato@kek.example", "membership request from")
    status, page = Browser().submit(links_in(review)[0], decision="approve")
    assert status == 200 and "Approved" in page, page


def test_a_member_registered_through_the_portal_container_binds_to_the_directory_container(
        stack):
    started = time.monotonic()
    member_dn = f"uid=tiijima,ou=people,{BASE_DN}"
    register_confirm_approve(stack.url, stack.mail_dir)

    # The member binds to the directory container, over ldap:// and ldaps://.
    bound = ldapwhoami(stack.ldap_url, member_dn, STRONG_PASSWORD)
    assert bound.returncode == 0 and bound.stdout.strip() == f"dn:{member_dn}", bound.stderr
    assert ldapwhoami(stack.ldap_url, member_dn, "wrong-password").returncode != 0
    over_tls = ldapwhoami(f"ldaps://127.0.0.1:{stack.ldaps_port}", member_dn, STRONG_PASSWORD,
                          LDAPTLS_CACERT=str(stack.tls_dir / "tls.crt"))
    assert over_tls.returncode == 0, over_tls.stderr
    # The sender has delivered everything ("account ready" included).
    deadline = time.monotonic() + 30
    while "dn: portalOutboxId=" in root_search(stack, f"ou=outbox,{BASE_DN}", "dn"):
        assert time.monotonic() < deadline, "the sender container did not empty the outbox"
        time.sleep(0.5)
    before = root_search(stack, BASE_DN, "dn", "member", "portalRequestStatus")
    assert f"member: {member_dn}" in before and "portalRequestStatus: approved" in before

    # The portal image: non-root, flask commands and the periodic jobs via exec.
    portal = stack.names["portal"]
    assert podman("exec", portal, "id", "-u").stdout.strip() != "0"
    podman("exec", portal, "flask", "--app", "wsgi", "portal", "check")
    podman("exec", portal, "portal-jobs", "--once")

    # A new directory container on the same volume: nothing lost.
    stack.remove(stack.names["ldap"])
    assert ldapwhoami(stack.ldap_url, member_dn, STRONG_PASSWORD).returncode != 0
    stack.run_directory()
    assert "ldap-portal: creating" not in podman("logs", stack.names["ldap"]).stdout
    bound = ldapwhoami(stack.ldap_url, member_dn, STRONG_PASSWORD)
    assert bound.returncode == 0 and bound.stdout.strip() == f"dn:{member_dn}", bound.stderr
    after = root_search(stack, BASE_DN, "dn", "member", "portalRequestStatus")
    # The same entries (slapd may list them in another order after a restart).
    assert sorted(after.split("\n\n")) == sorted(before.split("\n\n"))
    # ... and the running portal uses it again without a restart.
    podman("exec", portal, "flask", "--app", "wsgi", "portal", "check")
    print(f"journey through the containers in {time.monotonic() - started:.1f} s")


# -- compose.yaml, as README's one command runs it (podman-compose from Debian) ----------

COMPOSE_BUILD_ARGS = " ".join([*HOST_FLAGS, "--format", "docker"])
COMPOSE_RUN_ARGS = " ".join(HOST_FLAGS[:4])  # bridge network: compose's service names


@pytest.fixture
def compose(images):
    if shutil.which("podman-compose") is None:
        pytest.fail("podman-compose is missing: `make test` installs it as root")
    project = f"portaltest{secrets.token_hex(3)}"
    web_port, ldap_port = free_port(), free_port()
    env = {**os.environ, "BASE_IMAGE": BASE_IMAGE, "PORTAL_PORT": str(web_port),
           "LDAP_PORT": str(ldap_port)}
    command = ["podman-compose", "-p", project, "-f", str(ROOT / "compose.yaml"),
               "--podman-args=--runtime=/usr/sbin/runc"]

    def compose_run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([*command, *args], env=env, cwd=ROOT, capture_output=True,
                                text=True, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError(f"podman-compose {' '.join(args)}:\n"
                                 f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
        return result

    try:
        compose_run(f"--podman-build-args={COMPOSE_BUILD_ARGS}", "build")
        compose_run(f"--podman-run-args={COMPOSE_RUN_ARGS}", "up", "-d")
        mail_dir = Path(podman("volume", "inspect", "-f", "{{.Mountpoint}}",
                               f"{project}_mail").stdout.strip())
        yield type("Compose", (), {
            "project": project, "url": f"http://127.0.0.1:{web_port}",
            "ldap_url": f"ldap://127.0.0.1:{ldap_port}", "mail_dir": mail_dir})
    finally:
        compose_run("down", "-t", "5", check=False)
        for volume in ("ldap-data", "mail"):
            podman("volume", "rm", "-f", f"{project}_{volume}", check=False)
        podman("network", "rm", "-f", f"{project}_default", check=False)


def test_compose_brings_up_a_portal_with_demo_data(compose):
    started = time.monotonic()
    portal = f"{compose.project}_portal_1"
    deadline = time.monotonic() + 60
    while podman("exec", portal, "flask", "portal", "check", check=False).returncode != 0:
        assert time.monotonic() < deadline, podman("logs", portal, check=False).stderr
        time.sleep(1)
    demo_ir = "uid=irkek,ou=people,dc=example,dc=org"
    assert ldapwhoami(compose.ldap_url, demo_ir, DEMO_IR_PASSWORD).returncode == 0
    register_confirm_approve(compose.url, compose.mail_dir)
    member = "uid=tiijima,ou=people,dc=example,dc=org"
    bound = ldapwhoami(compose.ldap_url, member, STRONG_PASSWORD)
    assert bound.returncode == 0 and bound.stdout.strip() == f"dn:{member}", bound.stderr
    # The caught mail is shown by the portal (dev mode).
    status, page = Browser().open(compose.url + "/dev/mail")
    assert status == 200 and "confirm your e-mail address" in page
    print(f"journey through compose in {time.monotonic() - started:.1f} s")
