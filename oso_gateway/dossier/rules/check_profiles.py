"""Checks of the overstap profiles (OVa.*, OVb.*, PaO.*): metadata, inzage, school, leerling,
verzorgers, advies and toetsen.
"""

from __future__ import annotations

from datetime import date

from lxml import etree

from oso_gateway.dossier.codelists import (
    OVERSTAP_PROFILE_KINDS,
)
from oso_gateway.dossier.rules.context import _check, _Ctx
from oso_gateway.dossier.rules.registry import (
    SECRET_EMAIL,
    SECRET_PHONE,
    VALIDATIEVERSIE,
)
from oso_gateway.dossier.rules.values import (
    _child,
    _children,
    _date,
    _is_true,
    _text,
)

# --- dossier profiles ---------------------------------------------------------------------------

#: Profile (by overdrachtsoort) → rule prefix.
#: Checks several profiles share: check → {profile prefix: rule id}.
_P: dict[str, dict[str, str]] = {
    "las": {"OVa": "OVa.MD01", "OVb": "OVb.MD01", "PaO": "PaO.MD01"},
    "versie": {"OVa": "OVa.MD02", "OVb": "OVb.MD02", "PaO": "PaO.MD02"},
    "categorieblok": {"OVa": "OVa.MD03", "OVb": "OVb.MD03", "PaO": "PaO.MD03"},
    "overstap": {"OVa": "OVa.OS01", "PaO": "PaO.SO01"},
    "overstapsoort": {"OVa": "OVa.OS02", "PaO": "PaO.SO02"},
    "school_adres": {"OVa": "OVa.SL01", "PaO": "PaO.SL01"},
    "school_comm": {"OVa": "OVa.SL02", "PaO": "PaO.SL02"},
    "voornaam": {"OVa": "OVa.LL01", "PaO": "PaO.LL01"},
    "geboortedatum": {"OVa": "OVa.LL02", "PaO": "PaO.LL02"},
    "adresgeheim": {"OVa": "OVa.LL04", "PaO": "PaO.LL04"},
    "adres": {"OVa": "OVa.LL05", "PaO": "PaO.LL05"},
    "geboortemaand": {"OVa": "OVa.LL03", "OVb": "OVb.LL01", "PaO": "PaO.LL03"},
    "geheim_adres": {"OVa": "OVa.LL06", "OVb": "OVb.LL02", "PaO": "PaO.LL06"},
    "postcode4adres": {"OVa": "OVa.LL07", "OVb": "OVb.LL03", "PaO": "PaO.LL07"},
    "geheim_comm": {"OVa": "OVa.LL08", "OVb": "OVb.LL04", "PaO": "PaO.LL08"},
    "geheim_buitenland": {"OVa": "OVa.LL09", "OVb": "OVb.LL05", "PaO": "PaO.LL09"},
    "geboorteplaats": {"OVa": "OVa.LL10", "OVb": "OVa.LL10", "PaO": "PaO.LL10"},
    "nationaliteit": {"OVa": "OVa.LL11", "OVb": "OVa.LL11", "PaO": "PaO.LL11"},
    "schoolloopbaan": {"OVa": "OVa.SL01:schoolloopbaan", "PaO": "PaO.SL01:schoolloopbaan"},
    "verzorger": {"OVa": "OVa.OV01", "PaO": "PaO.OV01"},
    "verzorger_geheim_adres": {"OVa": "OVa.OV03", "OVb": "OVb.OV01", "PaO": "PaO.OV03"},
    "toetsresultaat": {"OVa": "OVa.TR05", "PaO": "PaO.TR01"},
    "toetsscore": {"OVa": "OVa.TR06", "PaO": "PaO.TR02"},
    "score": {"OVa": "OVa.CL01", "PaO": "PaO.CL01"},
}
_OVERSTAP_KINDS = {"OVa": OVERSTAP_PROFILE_KINDS, "PaO": frozenset({"POSWV", "VOSWV"})}


def _profile_rule(ctx: _Ctx, check: str) -> str | None:
    """The rule id of a shared check in this dossier's profile, or None when it does not apply."""
    return _P[check].get(ctx.profile or "")


def _report_p(ctx: _Ctx, check: str, el: etree._Element, suffix: str | None = None) -> None:
    rid = _profile_rule(ctx, check)
    if rid is not None:
        ctx.report(rid, el, suffix)


def _forbidden(ctx: _Ctx, parent: etree._Element, name: str, rid: str | None) -> None:
    if rid is not None:
        for el in _children(parent, name):
            ctx.report(rid, el)


@_check
def _metadata(ctx: _Ctx) -> None:
    md = ctx.metadata
    if ctx.profile is None or md is None:
        return
    if _text(_child(md, "deeldossier")) not in ("LAS", "LASLVS"):
        _report_p(ctx, "las", md, "deeldossier")
    if _text(_child(md, "validatieversie")) != VALIDATIEVERSIE:
        _report_p(ctx, "versie", md, "validatieversie")
    if _child(md, "categorie_uitlevering") is None:
        _report_p(ctx, "categorieblok", md, "categorie_uitlevering")
    overstap = _child(md, "overstap")
    if overstap is None:
        _report_p(ctx, "overstap", md, "overstap")
    elif ctx.overstap not in _OVERSTAP_KINDS.get(ctx.profile, frozenset({ctx.overstap})):
        _report_p(ctx, "overstapsoort", overstap)


# --- inzage --------------------------------------------------------------------------------------


@_check
def _inzage(ctx: _Ctx) -> None:
    block = _child(ctx.root, "inzage")
    if block is None:
        if ctx.ova:
            ctx.report("OVa.IZ01", ctx.root, "inzage")
        return
    ingezien = _is_true(_child(block, "inzage"))
    datum = _child(block, "inzagedatum")
    akkoord = _child(block, "akkoord")
    if ctx.ova:
        if not ingezien:
            ctx.report("OVa.IZ02", block, "inzage")
        if ingezien and datum is None:
            ctx.report("OVa.IZ03", block, "inzagedatum")
        if ingezien and akkoord is None:
            ctx.report("OVa.IZ04", block, "akkoord")
        if ctx.overstap == "VOVO" and _child(block, "toestemming") is None:
            ctx.report("OVa.IZ05", block, "toestemming")
    if datum is not None:
        if not ingezien:
            ctx.report("GW.IZ06", datum)
        d = _date(datum)
        if d is not None and d > ctx.today_limit:
            ctx.report("GW.DAT02", datum)
    reden = _child(block, "redennietakkoord")
    if _text(akkoord) == "Nee" and reden is None:
        assert akkoord is not None
        ctx.report("GW.IZ07", akkoord)
    if reden is not None and _text(akkoord) != "Nee":
        ctx.report("GW.IZ08", reden)
    toestemming = _child(block, "toestemming")
    if _text(toestemming) == "Nee":
        assert toestemming is not None
        ctx.report("GW.IZ09", toestemming)


# --- school, leerling, verzorgers ---------------------------------------------------------------


@_check
def _school(ctx: _Ctx) -> None:
    if ctx.school is None:
        return
    if not _children(_child(ctx.school, "adreslijst"), "adres"):
        _report_p(ctx, "school_adres", ctx.school, "adreslijst")
    if not _children(_child(ctx.school, "communicatielijst"), "communicatie"):
        _report_p(ctx, "school_comm", ctx.school, "communicatielijst")


@_check
def _leerling(ctx: _Ctx) -> None:
    ll = ctx.leerling
    if ll is None or ctx.profile is None:
        return
    for check, name in (
        ("voornaam", "voornaam"),
        ("geboortedatum", "geboortedatum"),
        ("adresgeheim", "adresgeheim"),
    ):
        if _child(ll, name) is None:
            _report_p(ctx, check, ll, name)
    geheim = _is_true(_child(ll, "adresgeheim"))
    has_address = bool(_children(_child(ll, "adreslijst"), "adres"))
    if not geheim and not has_address and _child(ll, "adresbuitenland") is None:
        _report_p(ctx, "adres", ll, "adreslijst")
    for check in ("geboortemaand", "postcode4adres", "geboorteplaats", "nationaliteit"):
        _forbidden(ctx, ll, check, _profile_rule(ctx, check))
    if geheim:
        for adres in _children(_child(ll, "adreslijst"), "adres"):
            _report_p(ctx, "geheim_adres", adres)
        _forbidden(ctx, ll, "adresbuitenland", _profile_rule(ctx, "geheim_buitenland"))
    for comm in ctx.iter("communicatie"):
        if not _is_true(_child(comm, "geheim")):
            continue
        soort, nummer = _text(_child(comm, "soort")), _text(_child(comm, "nummer"))
        if (soort == "telefoon" and nummer != SECRET_PHONE) or (
            soort == "e-mail" and nummer != SECRET_EMAIL
        ):
            _report_p(ctx, "geheim_comm", comm, "nummer")
    if not _children(_child(ll, "schoolloopbaanlijst"), "schoolloopbaan"):
        _report_p(ctx, "schoolloopbaan", ll, "schoolloopbaanlijst")
    aansprakelijk = _is_true(_child(ll, "verzorgersaansprakelijk"))
    if aansprakelijk and _child(ll, "verzorger") is None:
        _report_p(ctx, "verzorger", ll, "verzorger")
    for verzorger in _children(ll, "verzorger"):
        if _is_true(_child(verzorger, "adresgeheim")):
            for adres in _children(_child(verzorger, "adreslijst"), "adres"):
                _report_p(ctx, "verzorger_geheim_adres", adres)
    if ctx.profile == "OVa":
        _leerling_ova(ctx, ll, aansprakelijk)
    elif ctx.profile == "PaO":
        _leerling_pao(ctx, ll)


def _leerling_ova(ctx: _Ctx, ll: etree._Element, aansprakelijk: bool) -> None:
    for rid, name in (("OVa.LL14", "datuminschrijving"), ("OVa.LL15", "verzorgersaansprakelijk")):
        if _child(ll, name) is None:
            ctx.report(rid, ll, name)
    if _child(ll, "bsn") is None and _child(ll, "onderwijsnummer") is None:
        ctx.report("OVa.LL12", ll, "bsn")
    if ctx.overstap == "POVO" and _child(ll, "leerlingid") is None:
        ctx.report("OVa.LL13", ll, "leerlingid")
    if (
        ctx.overstap in ("POPO", "POVO")
        and not aansprakelijk
        and _child(ll, "aansprakelijkeinstelling") is None
    ):
        ctx.report("OVa.AI01", ll, "aansprakelijkeinstelling")
    if ctx.overstap != "POPO":
        _forbidden(ctx, ll, "voorschools", "OVa.VV01")
        _forbidden(ctx, ll, "vroegschools", "OVa.VV02")
    if _child(ll, "overstapadvies") is None:
        ctx.report("OVa.OA01", ll, "overstapadvies")


_PAO_VO_FORBIDDEN = ("vanpeuterspeelzaal", "naampeuterspeelzaal", "voorschools", "vroegschools")
_PAO_PO_FORBIDDEN = (
    "bevorderd",
    "examenresultaat",
    "resultaatvakkenvo",
    "certificaat",
    "competenties",
    "stage",
    "overigvombo",
)


def _leerling_pao(ctx: _Ctx, ll: etree._Element) -> None:
    _forbidden(ctx, ll, "bsn", "PaO.LL12")
    _forbidden(ctx, ll, "onderwijsnummer", "PaO.LL12")
    if ctx.overstap == "VOSWV":
        for i, name in enumerate(_PAO_VO_FORBIDDEN, start=1):
            _forbidden(ctx, ll, name, f"PaO.VV0{i}")
    if ctx.overstap == "POSWV":
        _forbidden(ctx, ll, "eindtoets_basisonderwijs", "PaO.EB01")
        for i, name in enumerate(_PAO_PO_FORBIDDEN, start=1):
            _forbidden(ctx, ll, name, f"PaO.VM0{i}")
    for verzorger in _children(ll, "verzorger"):
        _forbidden(ctx, verzorger, "banknummer", "PaO.OV05")


# --- overstapadvies, eindtoets, toetsen ----------------------------------------------------------


@_check
def _advies_toetsen(ctx: _Ctx) -> None:
    ll = ctx.leerling
    if ll is None:
        return
    for res in ctx.iter("resultaat"):
        if all(_child(res, n) is None for n in ("toetsscore", "referentiescore", "document")):
            _report_p(ctx, "toetsresultaat", res)
    score_fields = ("aantalopgaven", "aantalgoed", "aantalfout", "aantalgelezen", "tijd")
    for ts in ctx.iter("toetsscore"):
        if all(_child(ts, n) is None for n in (*score_fields, "vaardigheidsscore")):
            _report_p(ctx, "toetsscore", ts)
    for score in ctx.iter("score"):
        if _child(score, "waarde") is None and _child(score, "kwalificatie") is None:
            _report_p(ctx, "score", score)
    if ctx.ova:
        _advies_eindtoets_ova(ctx, ll)
    if ctx.overstap == "POVO":
        earliest = _earliest_test_date(_date(_child(ctx.metadata, "datum")))
        if earliest is not None:
            for toets in _children(_child(ll, "toetslijst"), "toets"):
                for afname in _children(toets, "afname"):
                    d = _date(_child(afname, "afnamedatum"))
                    if d is not None and d < earliest:
                        ctx.report("OVa.TR04", afname, "afnamedatum")


def _advies_eindtoets_ova(ctx: _Ctx, ll: etree._Element) -> None:
    advies = _child(ll, "overstapadvies")
    if advies is not None:
        soort_school = _text(_child(ctx.school, "soort"))
        if ctx.overstap == "POVO" and soort_school != "SO" and _child(advies, "advies") is None:
            ctx.report("OVa.OA02", advies, "advies")
        contact = _child(advies, "contactnodig")
        if contact is None:
            ctx.report("OVa.OA03", advies, "contactnodig")
        elif _is_true(contact):
            if _child(advies, "contactpersoon") is None:
                ctx.report("OVa.OA04", advies, "contactpersoon")
            if _child(advies, "contacttelefoon") is None:
                ctx.report("OVa.OA05", advies, "contacttelefoon")
    for et in _children(ll, "eindtoets_basisonderwijs"):
        resultaat = _child(et, "eindtoetsresultaat")
        if _is_true(_child(et, "deelgenomen")):
            if resultaat is None:
                ctx.report("OVa.EB02", et, "eindtoetsresultaat")
            elif _child(resultaat, "toets_advies") is None:
                ctx.report("OVa.EB04", resultaat, "toets_advies")
        elif _child(resultaat, "toetssoort") is None:
            ctx.report("OVa.EB03", et, "eindtoetsresultaat")


def _earliest_test_date(document_date: date | None) -> date | None:
    """Start of the school year two years before the document's school year (1 August)."""
    if document_date is None:
        return None
    start_year = document_date.year if document_date.month >= 8 else document_date.year - 1
    return date(start_year - 2, 8, 1)
