"""A dossier as JSON, in a stable shape derived from the schema (for school systems).

Shape (documented in ``docs/api.md``): the ``dossier`` root's children become object keys by
their local name, recursively; an element the schema lets repeat (``maxOccurs > 1``) is ALWAYS
a list, even with one item, and an optional element that is absent is absent; an attribute is a
key ``"@name"``; the text of an element that also has attributes is ``"$"``. Booleans are JSON
booleans, integers JSON numbers; decimals, dates and times stay strings exactly as in the XML.
Because the shape follows the schema, not the instance, it does not change from one dossier to
the next.

The schema (the validator's document, read once) is compiled by ``xmlschema`` on first use.
"""

from __future__ import annotations

import threading
from typing import Any

from lxml import etree

from oso_gateway.dossier.schema import SCHEMA_FILE, _schema_document

#: names the shape in the JSON (bumped if it ever changes)
JSON_FORMAT = "oso-gegevensset-2019+json;v=1"

_lock = threading.Lock()
_schema: Any = None


def _decoder() -> Any:
    global _schema
    with _lock:
        if _schema is None:
            import xmlschema

            document = _schema_document(SCHEMA_FILE)  # the file read once, by the validator
            _schema = xmlschema.XMLSchema(etree.tostring(document, encoding="unicode"))
        return _schema


def dossier_json(root: etree._Element) -> dict[str, Any]:
    """``{"format": JSON_FORMAT, "dossier": {...}}`` for a (valid) dossier element."""
    data = _decoder().to_dict(
        etree.tostring(root, encoding="unicode"),
        strip_namespaces=True,
        decimal_type=str,
        datetime_types=False,
    )
    return {"format": JSON_FORMAT, "dossier": data}
