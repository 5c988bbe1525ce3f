"""Value checks and element helpers the rules share (BSN, onderwijsnummer, BRIN, e-mail, dates,
element paths).
"""

from __future__ import annotations

import re
from datetime import date

from lxml import etree

from oso_gateway.dossier.categories import q


def element_path(el: etree._Element, suffix: str | None = None) -> str:
    """``/dossier/huidigeschool/leerling/bsn``; ``[n]`` (1-based) where siblings share a name."""
    parts: list[str] = []
    node: etree._Element | None = el
    while node is not None:
        tag = node.tag
        name = tag.rpartition("}")[2]  # the local name (as etree.QName(node).localname)
        # siblings of the same name, counted inside libxml2 (a long list is not copied per step)
        before = sum(1 for _ in node.itersiblings(tag, preceding=True))
        if before or next(node.itersiblings(tag), None) is not None:
            name += f"[{before + 1}]"
        parts.append(name)
        node = node.getparent()
    path = "/" + "/".join(reversed(parts))
    return f"{path}/{suffix}" if suffix else path


def _text(el: etree._Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


#: Clark names by local name (the rules ask for the same few dozen names on every dossier).
_TAGS: dict[str, str] = {}


def _tag(name: str) -> str:
    tag = _TAGS.get(name)
    if tag is None:
        tag = _TAGS[name] = q(name)
    return tag


def _child(el: etree._Element | None, name: str) -> etree._Element | None:
    """The first child element called ``name`` (as ``find``, without its path machinery)."""
    if el is None:
        return None
    return next(el.iterchildren(_tag(name)), None)


def _children(el: etree._Element | None, name: str) -> list[etree._Element]:
    return [] if el is None else list(el.iterchildren(_tag(name)))


def _is_true(el: etree._Element | None) -> bool:
    """xs:boolean true ("true" or "1")."""
    return _text(el) in ("true", "1")


_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def _date(el: etree._Element | None) -> date | None:
    """An xs:date value (an optional time zone suffix is ignored), or None."""
    m = _DATE.match(_text(el))
    if m is None:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def bsn_is_valid(value: str) -> bool:
    """BSN: nine digits passing the eleven test (9·d1 + 8·d2 + … + 2·d8 − d9 ≡ 0 mod 11), and
    not all zeros (which passes the arithmetic but is no number anyone is issued)."""
    return (
        len(value) == 9
        and value.isascii()
        and value.isdigit()
        and value != "000000000"
        and _weighted(value) == 0
    )


def onderwijsnummer_is_valid(value: str) -> bool:
    """Onderwijsnummer: nine digits starting with "10"; the BSN weighting leaves remainder 5."""
    return (
        len(value) == 9
        and value.isascii()
        and value.isdigit()
        and value.startswith("10")
        and _weighted(value) == 5
    )


def _weighted(value: str) -> int:
    digits = [int(c) for c in value]
    return (sum((9 - i) * d for i, d in enumerate(digits[:8])) - digits[8]) % 11


_BRIN = re.compile(r"[0-9]{2}[A-Z]{2}")
_VESTIGING = re.compile(r"[0-9]{2}")


def brin_is_valid(value: str) -> bool:
    """BRIN code as the 2019 schema defines it: two digits, then two capital letters."""
    return _BRIN.fullmatch(value) is not None


def vestiging_is_valid(value: str) -> bool:
    """Vestigingscode: two digits."""
    return _VESTIGING.fullmatch(value) is not None


_EMAIL = re.compile(
    r"[a-zA-Z0-9!#$%*+=?^_`{|}~.\-]{1,64}@[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?"
    r"(\.[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)*"
)


def email_is_valid(value: str) -> bool:
    """E-mail address as business rule OG.01 describes it (4…256 characters)."""
    return 4 <= len(value) <= 256 and _EMAIL.fullmatch(value) is not None
