"""Checks of the gateway's own rules (GW.*): identifiers, dates, attachments."""

from __future__ import annotations

import re
import zipfile

from oso_gateway.dossier.codelists import (
    DOCUMENT_EXTENSIONS,
)
from oso_gateway.dossier.rules.attachment import Base64Bytes, scan_base64
from oso_gateway.dossier.rules.context import _check, _Ctx
from oso_gateway.dossier.rules.values import (
    _child,
    _date,
    _text,
    brin_is_valid,
    bsn_is_valid,
    onderwijsnummer_is_valid,
    vestiging_is_valid,
)

# --- identifiers ---------------------------------------------------------------------------------

_BRIN_ELEMENTS = ("brincode", "teruggeplaatstnaarbrin", "arrangement_brin")
_VESTIGING_ELEMENTS = ("vestigingscode", "arrangement_vestigingscode")


@_check
def _identifiers(ctx: _Ctx) -> None:
    for el in ctx.iter("bsn"):
        if not bsn_is_valid(_text(el)):
            ctx.report("GW.BSN01", el)
    for el in ctx.iter("onderwijsnummer"):
        if not onderwijsnummer_is_valid(_text(el)):
            ctx.report("GW.OWN01", el)
    for name in _BRIN_ELEMENTS:
        for el in ctx.iter(name):
            if not brin_is_valid(_text(el)):
                ctx.report("GW.BRIN01", el)
    for name in _VESTIGING_ELEMENTS:
        for el in ctx.iter(name):
            if not vestiging_is_valid(_text(el)):
                ctx.report("GW.VEST01", el)


# --- dates ---------------------------------------------------------------------------------------

#: (container element, start field, end field) pairs checked by GW.DAT04.
DATE_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("leerling", "datuminschrijving", "datumuitschrijving"),
    ("schoolloopbaan", "begindatum", "einddatum"),
    ("handelingsplan", "startdatum", "einddatum"),
    ("opp", "opp_ingangdatum", "opp_einddatum"),
    ("tlv", "tlvingangdatum", "tlveinddatum"),
    ("lwoo", "lwoo_ingangdatum", "lwoo_einddatum"),
    ("arrangement_pao", "arrangement_datum", "arrangement_einddatum"),
    ("vroegschools", "vroegschoolsdatumingang", "vroegschoolseinddatum"),
    ("stage", "begindatum", "einddatum"),
)


@_check
def _dates(ctx: _Ctx) -> None:
    if ctx.leerling is not None:
        geboorte = _child(ctx.leerling, "geboortedatum")
        d = _date(geboorte)
        if geboorte is not None and d is not None and d > ctx.today_limit:
            ctx.report("GW.DAT01", geboorte)
    datum = _child(ctx.metadata, "datum")
    d = _date(datum)
    if datum is not None and d is not None and d > ctx.today_limit:
        ctx.report("GW.DAT03", datum)
    for container, start_name, end_name in DATE_PAIRS:
        for el in ctx.iter(container):
            start, end = _child(el, start_name), _child(el, end_name)
            ds, de = _date(start), _date(end)
            if end is not None and ds is not None and de is not None and ds > de:
                ctx.report("GW.DAT04", end)


# --- attachments ---------------------------------------------------------------------------------

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_BAD_NAME = re.compile(r"[/\\:\x00-\x1f]|^\.\.?$")


@_check
def _documents(ctx: _Ctx) -> None:
    for doc in ctx.iter("document"):
        naam = _child(doc, "bestandsnaam")
        if naam is not None:
            name = _text(naam)
            if _BAD_NAME.search(name):
                ctx.report("GW.DOC05", naam)
            ext = name.rpartition(".")[2].lower() if "." in name else ""
            if ext not in DOCUMENT_EXTENSIONS:
                ctx.report("GW.DOC04", naam)
        inhoud = _child(doc, "bestandsinhoud")
        if inhoud is None:
            continue
        # Checked and read piece by piece: an attachment's text is up to ~70 MB, and its bytes
        # are never held whole (``attachment.scan_base64``).
        content = scan_base64(inhoud.text or "")
        if content is None:
            ctx.report("GW.DOC01", inhoud)
        elif not content.read_at(0, 4).startswith(_ZIP_MAGIC):
            ctx.report("GW.DOC02", inhoud)
        elif not _zip_directory_readable(content):
            ctx.report("GW.DOC03", inhoud)


def _zip_directory_readable(content: Base64Bytes) -> bool:
    """Whether ``zipfile`` reads the ZIP's central directory (it reads the end record and the
    directory, not the members: only those pieces are decoded)."""
    try:
        with zipfile.ZipFile(content.open()) as archive:
            archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        return False
    except NotImplementedError:  # a directory entry needing a newer version than zipfile knows
        return False
    return True
