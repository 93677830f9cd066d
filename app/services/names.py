"""Names: normalisation, the collaboration mail address and account-name
suggestions. Pure functions, no directory access."""
from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from ..vocabulary import ACCOUNT_NAME_RE

# Letters that do not decompose into ASCII + combining marks.
_SPECIAL_FOLDS = str.maketrans({
    "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
    "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH",
    "ı": "i", "ħ": "h", "Ħ": "H",
})
_NAME_PUNCTUATION = frozenset(" -'\u2019.")
# Frequent East Asian family names: seen in the given-name field they suggest
# that given and family name were swapped.
_ASIAN_FAMILY_NAMES = frozenset("""
wang li zhang liu chen yang huang zhao wu zhou xu sun ma zhu hu guo he lin gao luo
zheng liang xie song tang han feng deng cao peng zeng xiao tian dong pan yuan cai jiang
kim lee park choi jung kang cho yoon jang lim shin
sato suzuki takahashi tanaka watanabe ito yamamoto nakamura kobayashi kato yoshida
yamada sasaki yamaguchi matsumoto inoue kimura hayashi shimizu yamazaki mori abe ikeda
hashimoto ishikawa ogawa okada goto hasegawa murakami kondo ishii saito sakamoto endo
nguyen tran le pham hoang vu vo dang bui do ngo duong
""".split())


# Particles typed in lower case stay so before the rest of a name
# ('nino de angelo' -> 'Nino de Angelo', 'VAN DER BERG' -> 'van der Berg').
_PARTICLES = frozenset("""
de da di del della dei degli do dos das du des la le lo van von der den ter ten zu zur
y e bin binti al el
""".split())
PARTICLES = _PARTICLES


class NameProblem(StrEnum):
    """Why a name cannot be used: one rule for the live hints and the form."""
    EMAIL = "e-mail"
    DIGITS = "digits"
    CHARACTERS = "letters"
    NO_LETTER = "no-letter"
    # Account name and collaboration address are made from the name: it is
    # written in Latin letters (accents are fine).
    NOT_LATIN = "not-latin"


def fold_ascii(text: str) -> str:
    """'Müller' -> 'Muller', 'Łukasz' -> 'Lukasz' (accents and special letters folded)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_SPECIAL_FOLDS))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).encode(
        "ascii", "ignore").decode()


def clean_whitespace(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text or "").split())


def normalise_name(text: str) -> str:
    """Capital first, then lowercase ('TORU' -> 'Toru', 'iijima' -> 'Iijima').

    Names typed all in upper or all in lower case are normalised word by
    word; a name with deliberate mixed case ('deAngelo', 'McDonald',
    'de Angelo') is kept as typed.
    """
    text = clean_whitespace(text)
    if not text or not (text.isupper() or text.islower()):
        return text
    words = text.lower().split(" ")
    return " ".join(
        word if word in _PARTICLES and index < len(words) - 1 else
        re.sub(r"(^|['\u2019-])(\w)", lambda m: m.group(1) + m.group(2).upper(), word)
        for index, word in enumerate(words))


def name_problem(text: str) -> NameProblem | None:
    """Why a name field value cannot be used, or None."""
    if "@" in text:
        return NameProblem.EMAIL
    for char in text:
        if char.isdigit():
            return NameProblem.DIGITS
        mark = unicodedata.category(char).startswith("M")
        if not (char.isalpha() or mark or char in _NAME_PUNCTUATION):
            return NameProblem.CHARACTERS
    if text and not any(c.isalpha() for c in text):
        return NameProblem.NO_LETTER
    if any(c.isalpha() and not fold_ascii(c).isalpha() for c in text):
        return NameProblem.NOT_LATIN
    return None


def looks_swapped(given: str, family: str) -> bool:
    """Given and family name probably entered in the wrong order."""
    g, f = fold_ascii(given).strip(), fold_ascii(family).strip()
    if not g or not f:
        return False
    # 'IIJIMA Toru' style: the family name is often written in capitals.
    if len(g) > 1 and g.isupper() and not f.isupper():
        return True
    return g.lower() in _ASIAN_FAMILY_NAMES and f.lower() not in _ASIAN_FAMILY_NAMES


def name_key(text: str) -> str:
    """A name folded for duplicate detection: case, accents, spaces and
    German transliteration do not count ('Müller' = 'Mueller' = 'Muller')."""
    folded = re.sub(r"[^a-z]", "", fold_ascii(text).lower())
    return folded.replace("ae", "a").replace("oe", "o").replace("ue", "u")


def person_keys(given: str, family: str) -> tuple[str, ...]:
    """Keys of a person in both orders (given/family are often swapped)."""
    g, f = name_key(given), name_key(family)
    if not g or not f:
        return ()
    return tuple(dict.fromkeys((f"{g}|{f}", f"{f}|{g}")))


def person_key(given: str, family: str) -> str:
    """The key stored with a person or request ("" for unusable names)."""
    keys = person_keys(given, family)
    return keys[0] if keys else ""


def mail_local_part(given: str, middle: str, family: str) -> str:
    """'Nino', '', 'de Angelo' -> 'nino.de.angelo'; spaces become dots."""
    words = " ".join(p for p in (given, middle, family) if p).split()
    parts = []
    for word in words:
        folded = re.sub(r"[^a-z0-9-]", "", fold_ascii(word).lower())
        folded = folded.strip("-")
        if folded:
            parts.append(folded)
    return ".".join(parts)


def mail_candidates(local: str, domain: str, count: int = 9) -> list[str]:
    """The address and its numbered alternatives for collisions."""
    return [f"{local}@{domain}"] + [f"{local}{n}@{domain}" for n in range(2, count + 2)]


def account_name_candidates(given: str, middle: str, family: str) -> list[str]:
    """Possible account names built from the names, best first."""
    def clean(text: str) -> str:
        return re.sub(r"[^a-z]", "", fold_ascii(text).lower())

    g, m, f = clean(given), clean(middle), clean(family)
    raw = [
        (g[:1] + f)[:8], f[:8], g[:8], (g[:1] + m[:1] + f)[:8], (g + f)[:8],
        (f[:7] + g[:1]), (g[:2] + f)[:8],
    ]
    candidates: list[str] = []
    for name in raw:
        if ACCOUNT_NAME_RE.match(name) and name not in candidates:
            candidates.append(name)
    base = (g[:1] + f)[:7] or f[:7]
    for n in range(1, 10):
        name = f"{base}{n}"
        if ACCOUNT_NAME_RE.match(name) and name not in candidates:
            candidates.append(name)
    return candidates
