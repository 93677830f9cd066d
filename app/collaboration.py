"""The collaboration file (``PORTAL_COLLABORATION_FILE``, by default
config/collaboration.toml): its categories, conditions of use, extra groups,
stage labels, webmail domains and reserved names, read and checked."""
from __future__ import annotations

import re
import tomllib
from collections import UserString
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .vocabulary import IR_STAGE


class LocalText(UserString):
    """A text of the collaboration file (a category's label, the conditions)
    in every language it is written in: it reads as the language being
    rendered (a page's or a mail's, Flask-Babel's locale), else as English,
    the fallback. In the file a text is a string (the same in every
    language) or a table by language code with "en" in it."""

    def __init__(self, texts: Mapping[str, str] | str):
        self.texts = {"en": texts} if isinstance(texts, str) else dict(texts)

    @property
    def data(self) -> str:  # what every str operation of UserString uses
        from flask_babel import get_locale
        locale = get_locale()
        language = locale.language if locale else "en"
        return self.texts.get(language) or self.texts.get("en", "")

    def __repr__(self) -> str:
        return f"LocalText({self.texts!r})"


def _local_text(value, where: str, problems: list[str]) -> LocalText:
    """A string, or a table of strings by language code that includes "en"."""
    if isinstance(value, str):
        return LocalText(value)
    if isinstance(value, dict) and value.get("en") and all(
            isinstance(k, str) and re.fullmatch(r"[a-z]{2,3}", k) and isinstance(v, str)
            for k, v in value.items()):
        return LocalText(value)
    problems.append(f"{where} is a text, or a table of texts by language code "
                    "with \"en\" (the fallback) in it")
    return LocalText(str(value))


@dataclass(frozen=True)
class Category:
    key: str
    label: str
    membership_days: int | None = None  # None: open-ended
    approval: tuple[str, ...] = (IR_STAGE,)  # stages: "ir", "group:<cn>"
    # What the later stages need besides the request (e.g. a formal
    # application to the board); its reference is recorded at approval.
    formal_application: str = ""
    # An invited request of this category is approved (its IR stage) by the
    # invitation itself: the inviting IR approved when inviting.
    invitation_approves: bool = False


@dataclass(frozen=True)
class ExtraGroup:
    cn: str
    label: str
    managers: str  # cn of the group whose members approve applications


@dataclass(frozen=True)
class Conditions:
    version: str
    title: str
    text: str


def load_collaboration_file(path: str, problems: list[str]) -> dict:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"PORTAL_COLLABORATION_FILE: {path} does not exist")
        return {}
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
        problems.append(f"PORTAL_COLLABORATION_FILE: {path} cannot be read: {exc}")
        return {}
    result: dict = {}
    categories = data.get("categories", [])
    try:
        result["categories"] = tuple(
            Category(str(c["key"]), _local_text(c["label"], f"{path}: label", problems),
                     int(c["membership_days"]) if c.get("membership_days") else None,
                     tuple(c.get("approval", [IR_STAGE])),
                     _local_text(c.get("formal_application", ""),
                                 f"{path}: formal_application", problems),
                     c.get("invitation_approves", False) is True)
            for c in categories)
        for category in result["categories"]:
            bad = [s for s in category.approval
                   if s != IR_STAGE and not re.match(r"^group:[a-z0-9][a-z0-9-]*$", s)]
            if bad or not category.approval:
                problems.append(f"{path}: category {category.key}: approval stages are 'ir' or "
                                f"'group:<name>', not {bad or 'nothing'}")
    except (KeyError, TypeError, ValueError):
        problems.append(f"{path}: every [[categories]] entry needs key and label "
                        "(and membership_days, if given, is a number of days)")
    if not categories:
        problems.append(f"{path}: at least one [[categories]] entry is required")
    conditions = data.get("conditions", {})
    if not conditions.get("version") or not conditions.get("text"):
        problems.append(f"{path}: [conditions] needs version and text")
    else:
        text = _local_text(conditions["text"], f"{path}: [conditions] text", problems)
        result["conditions"] = Conditions(
            str(conditions["version"]),
            _local_text(conditions.get("title", "Conditions of use"),
                        f"{path}: [conditions] title", problems),
            LocalText({k: v.strip() for k, v in text.texts.items()}),
        )
    result["stage_labels"] = {str(k): _local_text(v, f"{path}: [stage_labels] {k}", problems)
                              for k, v in data.get("stage_labels", {}).items()}
    try:
        result["extra_groups"] = tuple(
            ExtraGroup(str(g["cn"]), _local_text(g["label"], f"{path}: [[groups]] label",
                                                 problems), str(g["managers"]))
            for g in data.get("groups", []))
    except (KeyError, TypeError):
        problems.append(f"{path}: every [[groups]] entry needs cn, label and managers")
    for group in result.get("extra_groups", ()):
        if not re.match(r"^[a-z0-9][a-z0-9-]*$", group.cn + group.managers.replace("-", "")):
            problems.append(f"{path}: group names are lowercase letters, digits and hyphens")
    result["webmail_domains"] = tuple(d.lower() for d in data.get("webmail_domains", []))
    result["reserved_account_names"] = frozenset(
        n.lower() for n in data.get("reserved_account_names", [])
    )
    return result
