"""The collaboration file (``PORTAL_COLLABORATION_FILE``, by default
config/collaboration.toml): its categories, conditions of use, extra groups,
stage labels, webmail domains and reserved names, read and checked."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .vocabulary import IR_STAGE


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
            Category(str(c["key"]), str(c["label"]),
                     int(c["membership_days"]) if c.get("membership_days") else None,
                     tuple(c.get("approval", [IR_STAGE])),
                     str(c.get("formal_application", "")),
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
        result["conditions"] = Conditions(
            str(conditions["version"]), str(conditions.get("title", "Conditions of use")),
            str(conditions["text"]).strip(),
        )
    result["stage_labels"] = {str(k): str(v) for k, v in data.get("stage_labels", {}).items()}
    try:
        result["extra_groups"] = tuple(
            ExtraGroup(str(g["cn"]), str(g["label"]), str(g["managers"]))
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
