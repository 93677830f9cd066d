"""Unit tests of app/services/names.py (pure functions, no directory)."""
from __future__ import annotations

import re
import unicodedata

import pytest

from app.services.names import (
    NameProblem,
    account_name_candidates,
    looks_swapped,
    mail_candidates,
    mail_local_part,
    name_problem,
    normalise_name,
)

ACCOUNT_NAME = re.compile(r"^[a-z][a-z0-9]{3,7}$")


# -- normalise_name -------------------------------------------------------------------

@pytest.mark.parametrize("typed,expected", [
    ("TORU", "Toru"),
    ("iijima", "Iijima"),
    ("toru", "Toru"),
    ("jean-pierre", "Jean-Pierre"),
    ("JEAN-PIERRE", "Jean-Pierre"),
    ("DE ANGELO", "de Angelo"),
    ("jürgen", "Jürgen"),
    ("ŁUKASZ", "Łukasz"),
])
def test_names_typed_in_one_case_are_capitalised(typed, expected):
    assert normalise_name(typed) == expected


@pytest.mark.parametrize("typed", ["deAngelo", "McDonald", "de Angelo", "van der Berg",
                                   "Iijima", "Jean-Pierre", "DiCaprio"])
def test_deliberate_mixed_case_is_kept(typed):
    assert normalise_name(typed) == typed


@pytest.mark.parametrize("typed,expected", [
    ("  Toru  ", "Toru"),
    ("de   Angelo", "de Angelo"),
    ("Anne\t Marie", "Anne Marie"),
    ("  jean   pierre ", "Jean Pierre"),
    ("", ""),
    ("   ", ""),
])
def test_whitespace_is_trimmed_and_collapsed(typed, expected):
    assert normalise_name(typed) == expected


def test_decomposed_accents_are_composed():
    decomposed = unicodedata.normalize("NFD", "José")
    assert decomposed != "José"
    assert normalise_name(decomposed) == "José"


# -- mail_local_part -----------------------------------------------------------------------

@pytest.mark.parametrize("given,middle,family,expected", [
    ("Nino", "", "de Angelo", "nino.de.angelo"),
    ("Nino", "", "deAngelo", "nino.deangelo"),
    ("Toru", "", "Iijima", "toru.iijima"),
    ("John", "Ronald Reuel", "Tolkien", "john.ronald.reuel.tolkien"),
    ("Anna", "Maria", "Schmidt", "anna.maria.schmidt"),
    ("Jürgen", "", "Müller", "jurgen.muller"),
    ("Łukasz", "", "Żółkiewski", "lukasz.zolkiewski"),
    ("Hans", "", "Straße", "hans.strasse"),
    ("José", "", "Núñez", "jose.nunez"),
    ("Søren", "", "Kierkegaard", "soren.kierkegaard"),
    ("Jean-Pierre", "", "O'Neil", "jean-pierre.oneil"),
    ("Anne", "", "Smith-Jones", "anne.smith-jones"),
])
def test_mail_local_part(given, middle, family, expected):
    assert mail_local_part(given, middle, family) == expected


def test_mail_local_part_is_plain_ascii_lowercase():
    local = mail_local_part("Æsa", "Œdipe", "Þórsdóttir")
    assert local == "aesa.oedipe.thorsdottir"
    assert re.fullmatch(r"[a-z0-9.-]+", local)


def test_mail_local_part_drops_hyphens_at_word_edges_and_empty_words():
    assert mail_local_part("Anna", "-", "Schmidt") == "anna.schmidt"
    assert ".." not in mail_local_part("Anna", " ' ", "Schmidt")


# -- mail_candidates -----------------------------------------------------------------------------

def test_mail_candidates_start_with_the_plain_address_then_number_from_two():
    candidates = mail_candidates("toru.iijima", "example.org")
    assert candidates[0] == "toru.iijima@example.org"
    assert candidates[1] == "toru.iijima2@example.org"
    assert candidates[2] == "toru.iijima3@example.org"
    assert len(candidates) == 10
    assert candidates[-1] == "toru.iijima10@example.org"
    assert len(set(candidates)) == len(candidates)


def test_mail_candidates_count():
    assert mail_candidates("a.b", "example.org", count=2) == [
        "a.b@example.org", "a.b2@example.org", "a.b3@example.org"]


# -- looks_swapped -------------------------------------------------------------------------------

@pytest.mark.parametrize("given,family", [
    ("IIJIMA", "Toru"),      # family name in capitals, typed first
    ("Wang", "Wei"),         # a frequent Chinese family name in the given-name field
    ("Tanaka", "Hiroshi"),
    ("Kim", "Minjun"),
    ("Nguyen", "Anh"),
])
def test_swapped_names_are_noticed(given, family):
    assert looks_swapped(given, family) is True


@pytest.mark.parametrize("given,family", [
    ("Toru", "Iijima"),
    ("Wei", "Wang"),
    ("Anna", "Schmidt"),       # near miss: an ordinary Western name must not match
    ("Kimberly", "Jones"),     # starts with 'Kim' but is not 'Kim'
    ("Lina", "Hansen"),        # contains 'Lin', 'Li'
    ("Marco", "Rossi"),        # starts with 'Ma'
    ("Li", "Wang"),            # both family names: no evidence of a swap
    ("IIJIMA", "TORU"),        # all capitals: no evidence either
    ("Toru", ""),
    ("", "Toru"),
])
def test_ordinary_names_are_not_flagged(given, family):
    assert looks_swapped(given, family) is False


# -- name_problem --------------------------------------------------------------------------------

@pytest.mark.parametrize("value,fragment", [
    ("Toru1", "digits"),
    ("R2D2", "digits"),
    ("toru@kek.example", "e-mail"),
    ("<img>", "letters"),
    ("<img src=x onerror=alert(1)>", None),
    ("{{7*7}}", "letters"),
    ("${7*7}", None),
    ("a*)(uid=*", None),
    ("Toru;", None),
    ("---", "letter"),
    ("'.", "letter"),
])
def test_unusable_names_are_refused(value, fragment):
    problem = name_problem(value)
    assert problem
    if fragment:
        assert fragment in problem


@pytest.mark.parametrize("value", ["O'Neil", "O\u2019Neil", "Anne-Marie", "José", "de Angelo",
                                   "St. John", "Jürgen", "Łukasz", "Nguyễn", "Ørsted", "Çelik"])
def test_real_names_are_accepted(value):
    assert name_problem(value) is None


def test_decomposed_accents_are_accepted():
    assert name_problem(unicodedata.normalize("NFD", "José")) is None


# -- account_name_candidates ---------------------------------------------------------------------

@pytest.mark.parametrize("given,middle,family", [
    ("Toru", "", "Iijima"),
    ("Jürgen", "", "Müller"),
    ("Łukasz", "", "Żółkiewski"),
    ("Nino", "", "de Angelo"),
    ("Jean-Pierre", "Marie", "O'Neil"),
    ("Li", "", "Wu"),
    ("Maximilian", "Alexander", "Wolfeschlegelsteinhausen"),
])
def test_account_name_candidates_are_valid_account_names(given, middle, family):
    candidates = account_name_candidates(given, middle, family)
    assert candidates
    assert all(ACCOUNT_NAME.match(c) for c in candidates), candidates
    assert len(candidates) == len(set(candidates))


def test_account_name_candidates_are_built_from_the_names():
    candidates = account_name_candidates("Toru", "", "Iijima")
    assert candidates[0] == "tiijima"
    assert {"iijima", "toru"} <= set(candidates)
    assert "tiijima1" in candidates
    for c in candidates:
        assert "iijima" in c or "toru" in c or c.startswith(("ti", "to", "ii")), c


def test_account_name_candidates_fold_accents():
    candidates = account_name_candidates("Jürgen", "", "Müller")
    assert candidates[0] == "jmuller"
    assert "muller" in candidates and "jurgen" in candidates
    assert all(c.isascii() for c in candidates)
    assert "lzolkiew" in account_name_candidates("Łukasz", "", "Żółkiewski")
    assert "hstrasse" in account_name_candidates("Hans", "", "Straße")


def test_account_name_candidates_use_the_middle_initial():
    assert "jrtolkie" in account_name_candidates("John", "Ronald", "Tolkien")


def test_account_name_candidates_skip_names_too_short():
    candidates = account_name_candidates("Li", "", "Wu")
    assert "wu" not in candidates and "li" not in candidates
    assert "liwu" in candidates


def test_no_candidates_without_latin_letters():
    assert account_name_candidates("王", "", "伟") == []


# -- particles and scripts (issue 10, points 12 and 13) -------------------------------------------

@pytest.mark.parametrize("typed,expected", [
    ("nino de angelo", "Nino de Angelo"),   # the seeds' own example
    ("de angelo", "de Angelo"),
    ("VAN DER BERG", "van der Berg"),
    ("maria de la cruz", "Maria de la Cruz"),
    ("ludwig van", "Ludwig Van"),           # a last word is no particle
])
def test_particles_typed_in_one_case_stay_lower_case(typed, expected):
    assert normalise_name(typed) == expected


@pytest.mark.parametrize("value", ["王", "Иван", "Ivan Иванов", "Toru 徹", "Ελένη"])
def test_names_outside_the_latin_script_are_refused_with_one_rule(value):
    assert name_problem(value) == NameProblem.NOT_LATIN
