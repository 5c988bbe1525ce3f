"""The ID index that resolves signature references: which attributes count as IDs, across trees."""

from __future__ import annotations

import pytest
from _wss_support import sample_payload, seal_1_to_2
from lxml import etree

from oso_gateway.security.namespaces import WSU, XML
from oso_gateway.security.wss import _id_index


def _tree(text: str) -> etree._Element:
    return etree.fromstring(text.encode())


@pytest.mark.parametrize("by_name", [False, True], ids=["all-attributes", "by-name"])
def test_every_id_like_attribute_is_indexed_and_foreign_ones_are_not(by_name: bool) -> None:
    root = _tree(
        f'<r xmlns:wsu="{WSU}" xmlns:f="urn:foreign" Id="root">'
        '<a wsu:Id="w"/><b Id="i"/><c ID="u"/><d id="l"/><e xml:id="x"/>'
        '<g f:Id="foreign" f:id="foreign2" ident="no"/><h wsu:id="wrongcase"/></r>'
    )
    index = _id_index(root, by_name=by_name)
    assert {value: [el.tag for el in els] for value, els in index.items()} == {
        "root": ["r"],
        "w": ["a"],
        "i": ["b"],
        "u": ["c"],
        "l": ["d"],
        "x": ["e"],
    }
    assert index["x"][0].get(f"{{{XML}}}id") == "x"


@pytest.mark.parametrize("by_name", [False, True], ids=["all-attributes", "by-name"])
def test_one_element_with_the_same_value_in_two_id_attributes_is_listed_once(
    by_name: bool,
) -> None:
    root = _tree(f'<r xmlns:wsu="{WSU}"><a wsu:Id="same" Id="same" id="other"/></r>')
    index = _id_index(root, by_name=by_name)
    assert len(index["same"]) == 1 and index["same"][0] is index["other"][0]


@pytest.mark.parametrize("by_name", [False, True], ids=["all-attributes", "by-name"])
def test_the_same_value_in_two_trees_is_a_duplicate(by_name: bool) -> None:
    envelope = _tree(f'<env xmlns:wsu="{WSU}"><body wsu:Id="Body-1"/></env>')
    payload = _tree('<dossier><deep><decoy id="Body-1"/></deep></dossier>')
    index = _id_index(envelope, payload, by_name=by_name)
    assert [el.tag for el in index["Body-1"]] == ["body", "decoy"]


def test_both_walks_find_the_same_ids_in_a_sealed_envelope() -> None:
    """The envelope is indexed by name, the payload over all attributes: on a real envelope
    (and on one with IDs added in odd places) both give the same index."""
    envelope = etree.fromstring(seal_1_to_2(sample_payload()).data)
    extra = etree.SubElement(
        envelope[0], "odd", {"ID": "x1", "id": "x0", "Id": "x4", f"{{{XML}}}id": "x2"}
    )
    extra.set(f"{{{WSU}}}Id", "x3")
    by_name, everything = _id_index(envelope, by_name=True), _id_index(envelope)
    assert by_name.keys() == everything.keys() and {"x0", "x1", "x2", "x3", "x4"} <= by_name.keys()
    for value, els in everything.items():
        assert [id(el) for el in by_name[value]] == [id(el) for el in els]
