"""A namespace name may hold ``}``: lxml's ``QName`` refuses the Clark name it makes, and a
validation of such a document crashed instead of reporting a finding (found by the fuzz smoke
run in CI). Every place that names an element of an untrusted document splits the name itself."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from lxml import etree

from oso_gateway.dossier.schema import element_path
from oso_gateway.dossier.validate import validate_dossier
from oso_gateway.security.c14n import _namespaces_of
from oso_gateway.security.namespaces import local_name, split_clark
from oso_gateway.security.xmlparse import parse_xml

#: the input the fuzzer found: <r xmlns="}rn:a"><s xmlns="POPOb">"">0;newli</s></r>
FOUND = base64.b64decode("PHIgeG1sbnM9In1ybjphIj48cyB4bWxucz0iUE9QT2IiPiIiPjA7bmV3bGk8L3M+PC9yPgo=")


def test_a_clark_name_is_split_at_its_last_brace() -> None:
    assert split_clark("{}rn:a}r") == ("}rn:a", "r")
    assert split_clark("{urn:x}dossier") == ("urn:x", "dossier")
    assert split_clark("plain") == (None, "plain")
    assert local_name("{a}b}c") == "c"
    root = etree.fromstring(FOUND)
    assert root.tag == "{}rn:a}r"  # what lxml makes of it


def test_validating_the_found_input_reports_a_finding_instead_of_crashing() -> None:
    report = validate_dossier(FOUND, now=datetime.now(UTC))
    assert not report.valid and report.findings
    assert all(f.path.startswith("/") for f in report.findings)


def test_an_element_path_and_the_wrapper_namespaces_take_such_names() -> None:
    root = parse_xml(FOUND).getroot()
    # no ValueError; names the schema does not declare are "*" (a document's own names may be
    # anything), the schema's own are named by their local name in any namespace
    assert element_path(root[0]) == "/*/*"
    odd = parse_xml(b'<dossier xmlns="}rn:a"><leerling xmlns="POPOb">x</leerling></dossier>')
    odd = odd.getroot()
    assert element_path(odd[0]) == "/dossier/leerling"
    assert _namespaces_of("{urn:soap}Body", ("{x}y}attr", "plain")) == frozenset(
        {"urn:soap", "x}y"}
    )
