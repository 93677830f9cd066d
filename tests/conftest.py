"""The suite's fixtures: a real slapd, SMTP server and rate-limit store per test session,
a clean directory and mailbox per test. They live in tests/fixtures/; shared
helpers and constants in tests/helpers.py (import them from there)."""
import pytest

# Before anything imports it: plain asserts in the helpers report their values too.
pytest.register_assert_rewrite("helpers")

pytest_plugins = ["fixtures.directory", "fixtures.mail", "fixtures.ratestore", "fixtures.web",
                  "fixtures.clients", "fixtures.browser", "fixtures.tls"]
