"""Password rules and hashing (no directory access)."""
from __future__ import annotations

import re
import unicodedata

from argon2 import PasswordHasher
from flask_babel import lazy_gettext as _l
from zxcvbn import zxcvbn

from .names import fold_ascii

# OWASP's argon2id minimum (m=19 MiB, t=2, p=1); slapd's argon2 module
# verifies these hashes.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
MAX_PASSWORD_LENGTH = 128
# zxcvbn score 0-4; 3 means "safely unguessable: moderate protection from
# offline slow-hash scenario".
MIN_ZXCVBN_SCORE = 3
# "{SSHA}...", "{CRYPT}...": slapd takes a value that starts with a scheme
# it knows for a stored hash (its quality check refuses it under the default
# policy, with no reason a member would understand), so every such start is
# refused here, with the reason.
LOOKS_HASHED = re.compile(r"^\{[A-Za-z0-9._-]+\}")
# Name parts shorter than this ("Li", "de") occur inside too many passwords.
MIN_NAME_PART_LENGTH = 3


def hash_password(password: str) -> bytes:
    """userPassword form of an argon2id hash."""
    return b"{ARGON2}" + _HASHER.hash(password).encode()


def password_problems(password: str, min_length: int, account_name: str = "",
                      name_parts: tuple[str, ...] = (), other_inputs: tuple[str, ...] = ()) -> list:
    """Every reason ``password`` is refused (empty when it is fine)."""
    if len(password) < min_length:
        return [_l("Use at least %(n)d characters.", n=min_length)]
    if len(password) > MAX_PASSWORD_LENGTH:
        return [_l("Use at most %(n)d characters.", n=MAX_PASSWORD_LENGTH)]
    if any(unicodedata.category(c).startswith("C") for c in password):
        return [_l("The password cannot contain control or invisible formatting characters.")]
    if LOOKS_HASHED.match(password):
        return [_l("The password cannot start with a word in braces such as {SSHA}, which "
                   "marks a stored hash. Put another character first.")]
    problems = []
    folded = fold_ascii(password).lower()
    if account_name and account_name.lower() in folded:
        problems.append(_l("The password must not contain your account name."))
    parts = {fold_ascii(w).lower() for p in name_parts for w in p.replace("-", " ").split()}
    if any(len(p) >= MIN_NAME_PART_LENGTH and p in folded for p in parts):
        problems.append(_l("The password must not contain your names."))
    if problems:
        return problems
    inputs = [account_name, *parts, *other_inputs]
    # zxcvbn refuses more than 72 characters; the start is what gets guessed.
    result = zxcvbn(password[:72], user_inputs=[i for i in inputs if i])
    if result["score"] < MIN_ZXCVBN_SCORE:
        hint = result["feedback"].get("warning")
        problems.append(_l("This password is too common or too easy to guess. %(hint)s", hint=hint)
                        if hint else _l("This password is too common or too easy to guess."))
    return problems
