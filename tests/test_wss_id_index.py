"""The ID index that resolves signature references: which attributes count as IDs, across trees."""

from __future__ import annotations

from lxml import etree

from oso_gateway.security.namespaces import WSU, XML
from oso_gateway.security.wss import _id_index


def _tree(text: str) -> etree._Element:
    return etree.fromstring(text.encode())


def test_every_id_like_attribute_is_indexed_and_foreign_ones_are_not() -> None:
    root = _tree(
        f'<r xmlns:wsu="{WSU}" xmlns:f="urn:foreign" Id="root">'
        '<a wsu:Id="w"/><b Id="i"/><c ID="u"/><d id="l"/><e xml:id="x"/>'
        '<g f:Id="foreign" f:id="foreign2" ident="no"/><h wsu:id="wrongcase"/></r>'
    )
    index = _id_index(root)
    assert {value: [el.tag for el in els] for value, els in index.items()} == {
        "root": ["r"],
        "w": ["a"],
        "i": ["b"],
        "u": ["c"],
        "l": ["d"],
        "x": ["e"],
    }
    assert index["x"][0].get(f"{{{XML}}}id") == "x"


def test_one_element_with_the_same_value_in_two_id_attributes_is_listed_once() -> None:
    root = _tree(f'<r xmlns:wsu="{WSU}"><a wsu:Id="same" Id="same" id="other"/></r>')
    index = _id_index(root)
    assert len(index["same"]) == 1 and index["same"][0] is index["other"][0]


def test_the_same_value_in_two_trees_is_a_duplicate() -> None:
    envelope = _tree(f'<env xmlns:wsu="{WSU}"><body wsu:Id="Body-1"/></env>')
    payload = _tree('<dossier><deep><decoy id="Body-1"/></deep></dossier>')
    index = _id_index(envelope, payload)
    assert [el.tag for el in index["Body-1"]] == ["body", "decoy"]
