"""The collaboration's members list: `flask members-list import` (a
re-import replaces it, a broken line changes nothing), the parser's line
numbers, the review page without a list, and who may read it. The review
page's "On the members list" through nginx: test_certificates.py."""
from __future__ import annotations

import pytest

from app.services.memberslist import MembersListRefused, parse_members_list
from fixtures.tls import MEMBERS_LIST_DN
from helpers import PEOPLE, read_entry


def test_members_list_import_replaces_and_broken_lines_change_nothing(members_list, root,
                                                                      tmp_path):
    first = members_list("a@kek.example,A,B,kek\nc@desy.example,C,D,desy,\"CN=C D,O=DESY\"\n",
                         tmp_path)
    assert first.exit_code == 0
    broken = members_list("e@infn.example,E,F,infn\nnot-an-address,G,H,infn\n"
                          "x@kek.example,only-three,kek\n", tmp_path)
    assert broken.exit_code == 1
    assert "line 2" in broken.output and "line 3" in broken.output
    entry = read_entry(root, MEMBERS_LIST_DN, ("portalListedMail",))
    assert set(entry.portalListedMail.values) == {"a@kek.example", "c@desy.example"}
    again = members_list("e@infn.example,E,F,infn\n", tmp_path)
    assert again.exit_code == 0 and "before: 2" in again.output
    entry = read_entry(root, MEMBERS_LIST_DN, ("portalListedMail", "portalListedCertificate"))
    assert set(entry.portalListedMail.values) == {"e@infn.example"}
    assert not entry.portalListedCertificate.values


def test_members_list_parser_names_each_broken_line():
    with pytest.raises(MembersListRefused) as refused:
        parse_members_list("email,given,family,institution\na@x.org,A,B,kek\na@x.org,A,B,kek\n"
                           "b@x.org,B,,kek\nc@x.org,C,D,kek,no-dn\n")
    assert [p.split(":")[0] for p in refused.value.problems] == ["line 3", "line 4", "line 5"]


def test_the_mail_of_a_form_registration_is_not_marked_without_the_list(client, root,
                                                                        register_and_verify):
    review = client.get(register_and_verify()).get_data(as_text=True)
    assert 'id="members-list"' not in review


def test_only_the_portal_reads_the_members_list(slapd, members_list, tmp_path):
    import ldap3

    from app.devstack.slapd import DEMO_IR_PASSWORD
    assert members_list("a@kek.example,A,B,kek\n", tmp_path).exit_code == 0
    member = ldap3.Connection(ldap3.Server(slapd.url), f"uid=irkek,{PEOPLE}", DEMO_IR_PASSWORD,
                              auto_bind=True)
    anonymous = ldap3.Connection(ldap3.Server(slapd.url), auto_bind=True)
    for conn in (member, anonymous):
        conn.search(MEMBERS_LIST_DN, "(objectClass=*)", search_scope=ldap3.BASE,
                    attributes=["portalListedMail", "portalListedMember"])
        assert not conn.entries or not conn.entries[0].entry_attributes_as_dict.get(
            "portalListedMail")




def test_a_listed_address_is_marked_on_the_review_page(client, members_list, tmp_path,
                                                       register_and_verify):
    assert members_list("TOru.Iijima@kek.example,Toru,Iijima,kek\n", tmp_path).exit_code == 0
    review = client.get(register_and_verify()).get_data(as_text=True)
    assert 'id="members-list"' in review
    assert "the address is on the collaboration" in review
