"""Business rules of the OSO gegevensset 2019 and the overstap profiles, in Python.

``check_rules(root, now=...)`` takes a dossier that already passed the schema and returns every
rule finding. Each rule has a stable code: the standard's own business-rule code where the
standard has one (``OG.01``, ``OS.cat05``, ``OVa.IZ03`` …), ``CLnn`` for a value outside code list
*nn* of "OSO codelijsten", and ``GW.…`` for the checks this gateway adds (identifier check digits,
dates against the clock, attachments). Messages are fixed texts per rule: they name fields and
rules, never a value from the dossier, so findings can be logged and sent to the peer.

Profiles: the overstapdossier rules (``OVa.*``) apply when ``overdrachtsoort`` is
``overstapdossier``; the overdracht-binnen-BRIN rules (``OVb.*``) when it is
``overdrachtbinnenbrin``. The common rules (code lists, ``OG.*``, ``OS.cat*``, ``GW.*``) always
apply.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from lxml import etree

from oso_gateway.dossier import categories as cats
from oso_gateway.dossier.categories import CATEGORIES, EXCLUDED, Category, Uitlevering, q
from oso_gateway.dossier.codelists import (
    CODE_LISTS,
    DOCUMENT_EXTENSIONS,
    OVERSTAP_PROFILE_KINDS,
    CodeList,
)
from oso_gateway.dossier.findings import Finding, Severity
from oso_gateway.protocol import STANDAARDVERSIE, VALIDATIEVERSIE

E = Severity.ERROR
W = Severity.WARNING

OVERSTAPDOSSIER = "overstapdossier"
BINNENBRIN = "overdrachtbinnenbrin"
SWV_DOSSIER = "swv-dossier"
#: Secret-number placeholders the overstap profiles prescribe for a secret phone number / e-mail.
SECRET_PHONE = "9999999999"  # noqa: S105 (a placeholder the standard fixes)
SECRET_EMAIL = "geheim@geheim.geheim"  # noqa: S105
#: Slack when comparing a dossier date with ``now``: the school's calendar day may already be
#: tomorrow in UTC terms (the Netherlands are UTC+1/+2).
CLOCK_SLACK = timedelta(days=1)


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One business rule: stable code, severity and fixed bilingual message (no data)."""

    id: str  #: unique key (code, or code + ":" + variant when one code covers several checks)
    code: str
    severity: Severity
    nl: str
    en: str
    standard: str = ""  #: the standard's rule it implements ("" for our own)


_RULES: dict[str, Rule] = {}


def _rule(rid: str, severity: Severity, nl: str, en: str, *, standard: str | None = None) -> None:
    code = rid.split(":", 1)[0]
    if rid in _RULES:
        raise ValueError(f"duplicate rule id {rid}")
    std = standard if standard is not None else ("" if code.startswith("GW.") else code)
    _RULES[rid] = Rule(id=rid, code=code, severity=severity, nl=nl, en=en, standard=std)


# --- categorie_uitlevering (OS.cat01 … OS.cat16) ---------------------------------------------
for _c in CATEGORIES:
    # A schema-required category (metadata, school, leerling) is always present: no VERPLICHT rule.
    if not _c.schema_required:
        _rule(
            f"{_c.rule}:verplicht",
            E,
            f"Categorie '{_c.label_nl}' is VERPLICHT, maar het dossier bevat er geen gegevens uit.",
            f"Category '{_c.label_en}' is mandatory (VERPLICHT) but the dossier has none of its "
            "data.",
        )
    _rule(
        f"{_c.rule}:verboden",
        E,
        f"Categorie '{_c.label_nl}' is VERBODEN, maar het dossier bevat er gegevens uit.",
        f"Category '{_c.label_en}' is forbidden (VERBODEN) but the dossier contains its data.",
    )
    _rule(
        f"{_c.rule}:opt-uit",
        E,
        f"Ouders hebben categorie '{_c.label_nl}' uitgezet (OPT-UIT), maar het dossier bevat er "
        "gegevens uit.",
        f"The parents opted out of category '{_c.label_en}' (OPT-UIT) but the dossier contains "
        "its data.",
    )

# --- code lists ------------------------------------------------------------------------------
for _cl in CODE_LISTS:
    _rule(
        _cl.code,
        E,
        f"Het veld bevat een waarde die niet voorkomt in codelijst {_cl.number} ({_cl.name_nl}).",
        f"The field holds a value that is not in code list {_cl.number} ({_cl.name_en}).",
        standard=f"codelijst {_cl.number}",
    )

# --- common business rules of the gegevensset (OG.*) ---------------------------------------
_rule("OG.01", E, "Het e-mailadres heeft geen geldig formaat.", "The e-mail address is malformed.")
_rule(
    "OG.02",
    E,
    f"Het veld standaardversie moet '{STANDAARDVERSIE}' zijn.",
    f"The field standaardversie must be '{STANDAARDVERSIE}'.",
)
_rule(
    "OG.03",
    E,
    "De LWOO-einddatum moet op 31 juli vallen.",
    "The LWOO end date must be 31 July.",
)
_rule(
    "OG.04",
    E,
    "Een overlijdensdatum van een ouder/verzorger mag alleen als 'overleden' waar is.",
    "A parent/carer's date of death is allowed only when 'overleden' is true.",
)
_rule(
    "OG.05",
    E,
    "Bij de huisarts zijn roepnaam, geslacht en een geheim adres niet toegestaan.",
    "The family doctor block may not hold a call name, sex or a secret-address flag.",
)

# --- overstap profiles: metadata, soort overstap --------------------------------------------
for _p in ("OVa", "OVb"):
    _rule(
        f"{_p}.MD01",
        E,
        "Het dossier moet een LAS-deel bevatten (deeldossier LAS of LASLVS).",
        "The dossier must include the LAS part (deeldossier LAS or LASLVS).",
    )
    _rule(
        f"{_p}.MD02",
        E,
        f"Het veld validatieversie moet '{VALIDATIEVERSIE}' zijn.",
        f"The field validatieversie must be '{VALIDATIEVERSIE}'.",
    )
    _rule(
        f"{_p}.MD03",
        E,
        "Het dossier moet het blok categorie_uitlevering bevatten.",
        "The dossier must contain the categorie_uitlevering block.",
    )
_rule(
    "OVa.OS01",
    E,
    "Een overstapdossier moet de soort overstap bevatten.",
    "An overstapdossier must state the transfer kind (overstap).",
)
_rule(
    "OVa.OS02",
    E,
    "In een overstapdossier is de soort overstap POPO, POVO of VOVO.",
    "In an overstapdossier the transfer kind must be POPO, POVO or VOVO.",
)

# --- inzage -----------------------------------------------------------------------------------
_rule(
    "OVa.IZ01",
    E,
    "Een overstapdossier moet het blok inzage bevatten.",
    "An overstapdossier must contain the inzage (parents' review) block.",
)
_rule(
    "OVa.IZ02",
    E,
    "Een overstapdossier moet door de ouders/verzorgers zijn ingezien (inzage = true).",
    "The parents must have reviewed an overstapdossier (inzage = true).",
)
_rule(
    "OVa.IZ03",
    E,
    "Na inzage is de inzagedatum verplicht.",
    "After review the review date (inzagedatum) is required.",
)
_rule(
    "OVa.IZ04",
    E,
    "Na inzage is het veld akkoord verplicht.",
    "After review the field akkoord (parents agree with the content) is required.",
)
_rule(
    "OVa.IZ05",
    E,
    "Bij een VOVO-overstap is het veld toestemming verplicht.",
    "For a VOVO transfer the field toestemming (consent) is required.",
)
_rule(
    "GW.IZ06",
    W,
    "Er is een inzagedatum, maar inzage is niet waar.",
    "A review date is given although inzage is not true.",
)
_rule(
    "GW.IZ07",
    W,
    "Ouders zijn niet akkoord, maar de reden ontbreekt (redennietakkoord).",
    "The parents disagree but no reason (redennietakkoord) is given.",
)
_rule(
    "GW.IZ08",
    W,
    "Er is een reden van niet-akkoord, terwijl akkoord niet 'Nee' is.",
    "A reason for disagreement is given although akkoord is not 'Nee'.",
)
_rule(
    "GW.IZ09",
    W,
    "Ouders/verzorgers hebben geen toestemming voor de overdracht gegeven (toestemming = Nee).",
    "The parents did not consent to the transfer (toestemming = Nee).",
)

# --- school, leerling, verzorgers --------------------------------------------------------------
_rule(
    "OVa.SL01",
    E,
    "In een overstapdossier heeft de school minimaal één adres.",
    "In an overstapdossier the school must have at least one address.",
)
_rule(
    "OVa.SL02",
    E,
    "In een overstapdossier heeft de school minimaal één communicatiegegeven.",
    "In an overstapdossier the school must have at least one communication entry.",
)
_rule(
    "OVa.SL01:schoolloopbaan",
    E,
    "In een overstapdossier heeft de leerling minimaal één schoolloopbaan.",
    "In an overstapdossier the pupil must have at least one school career entry.",
)
for _rid, _nl, _en in (
    ("OVa.LL01", "minimaal één voornaam", "at least one first name"),
    ("OVa.LL02", "de geboortedatum", "the date of birth"),
    ("OVa.LL04", "de indicatie adresgeheim", "the secret-address flag"),
    ("OVa.LL14", "de inschrijfdatum", "the enrolment date"),
    ("OVa.LL15", "de indicatie verzorgersaansprakelijk", "the 'carers are liable' flag"),
):
    _rule(
        _rid,
        E,
        f"In een overstapdossier is {_nl} van de leerling verplicht.",
        f"In an overstapdossier {_en} of the pupil is required.",
    )
for _rid, _nl, _en in (
    ("OVa.LL03", "de geboortemaand", "the birth month"),
    ("OVb.LL01", "de geboortemaand", "the birth month"),
    ("OVa.LL07", "de postcode4-aanduiding", "the four-digit postcode field"),
    ("OVb.LL03", "de postcode4-aanduiding", "the four-digit postcode field"),
    ("OVa.LL10", "de geboorteplaats", "the place of birth"),
    ("OVa.LL11", "de nationaliteit", "the nationality"),
):
    _rule(
        _rid,
        E,
        f"In dit dossierprofiel is {_nl} van de leerling niet toegestaan.",
        f"In this dossier profile {_en} of the pupil is not allowed.",
    )
_rule(
    "OVa.LL05",
    E,
    "Een leerling zonder geheim adres moet een Nederlands of buitenlands adres hebben.",
    "A pupil whose address is not secret must have a Dutch or foreign address.",
)
for _rid in ("OVa.LL06", "OVb.LL02"):
    _rule(
        _rid,
        E,
        "Het adres van de leerling is geheim: een leerlingadres is dan niet toegestaan.",
        "The pupil's address is secret: no pupil address may be included.",
    )
for _rid in ("OVa.LL09", "OVb.LL05"):
    _rule(
        _rid,
        E,
        "Het adres van de leerling is geheim: een buitenlands adres is dan niet toegestaan.",
        "The pupil's address is secret: no foreign address may be included.",
    )
for _rid in ("OVa.LL08", "OVb.LL04"):
    _rule(
        _rid,
        E,
        "Een geheim telefoonnummer of e-mailadres moet als vaste geheimwaarde worden doorgegeven.",
        "A secret phone number or e-mail address must be sent as the fixed placeholder value.",
    )
_rule(
    "OVa.LL12",
    E,
    "In een overstapdossier is een BSN of onderwijsnummer van de leerling verplicht.",
    "In an overstapdossier the pupil's BSN or onderwijsnummer is required.",
)
_rule(
    "OVa.LL13",
    E,
    "In een POVO-overstapdossier is de leerlingcode van de school (leerlingid) verplicht.",
    "In a POVO overstapdossier the school's pupil id (leerlingid) is required.",
)
_rule(
    "OVa.AI01",
    E,
    "Bij POPO en POVO is een aansprakelijke instelling verplicht als de verzorgers niet "
    "aansprakelijk zijn.",
    "For POPO and POVO a liable institution is required when the carers are not liable.",
)
_rule(
    "OVa.OV01",
    E,
    "Als de verzorgers aansprakelijk zijn, is minimaal één verzorger verplicht.",
    "When the carers are liable at least one carer is required.",
)
for _rid in ("OVa.OV03", "OVb.OV01"):
    _rule(
        _rid,
        E,
        "Het adres van de verzorger is geheim: een verzorgeradres is dan niet toegestaan.",
        "The carer's address is secret: no carer address may be included.",
    )
_rule(
    "OVa.VV01",
    E,
    "Voorschoolse gegevens zijn alleen toegestaan bij een POPO-overstap.",
    "Pre-school data is allowed only for a POPO transfer.",
)
_rule(
    "OVa.VV02",
    E,
    "Vroegschoolse gegevens zijn alleen toegestaan bij een POPO-overstap.",
    "Early-school data is allowed only for a POPO transfer.",
)

# --- overstapadvies, eindtoets, toetsen --------------------------------------------------------
_rule(
    "OVa.OA01",
    E,
    "Een overstapdossier moet het blok overstapadvies bevatten.",
    "An overstapdossier must contain the overstapadvies block.",
)
_rule(
    "OVa.OA02",
    E,
    "Bij een POVO-overstap is het VO-advies verplicht (SO-scholen uitgezonderd).",
    "For a POVO transfer the secondary-school advice is required (except SO schools).",
)
_rule(
    "OVa.OA03",
    E,
    "In een overstapdossier is de aanduiding contactnodig verplicht.",
    "In an overstapdossier the field contactnodig is required.",
)
_rule(
    "OVa.OA04",
    E,
    "Als contact nodig is, is een contactpersoon verplicht.",
    "When contact is needed a contact person is required.",
)
_rule(
    "OVa.OA05",
    E,
    "Als contact nodig is, is een telefoonnummer van de contactpersoon verplicht.",
    "When contact is needed the contact person's phone number is required.",
)
_rule(
    "OVa.EB02",
    E,
    "Bij deelname aan de eindtoets is het eindtoetsresultaat verplicht.",
    "When the pupil took the final test its result is required.",
)
_rule(
    "OVa.EB03",
    E,
    "Zonder deelname aan de eindtoets is de soort eindtoets verplicht.",
    "When the pupil did not take the final test the test kind is still required.",
)
_rule(
    "OVa.EB04",
    E,
    "Bij deelname aan de eindtoets is het toetsadvies verplicht.",
    "When the pupil took the final test the test advice is required.",
)
_rule(
    "OVa.TR04",
    E,
    "Bij een POVO-overstap zijn alleen toetsen uit het huidige en de twee voorgaande "
    "schooljaren toegestaan.",
    "For a POVO transfer only tests from the current and the two previous school years are "
    "allowed.",
)
_rule(
    "OVa.TR05",
    E,
    "Een toetsresultaat moet een score, een referentiescore of een bijlage bevatten.",
    "A test result must hold a score, a reference score or an attachment.",
)
_rule(
    "OVa.TR06",
    E,
    "Een toetsscore moet minimaal één score-onderdeel bevatten.",
    "A test score must hold at least one score field.",
)
_rule(
    "OVa.CL01",
    E,
    "Een score moet een waarde of een kwalificatie bevatten.",
    "A score must hold a value or a qualification.",
)

# --- SWV profile (PaO.*): rules shared with the overstapdossier profile ------------------------
_PAO_FROM_OVA = {
    "PaO.MD01": "OVa.MD01",
    "PaO.MD02": "OVa.MD02",
    "PaO.MD03": "OVa.MD03",
    "PaO.SO01": "OVa.OS01",
    "PaO.SL01": "OVa.SL01",
    "PaO.SL02": "OVa.SL02",
    "PaO.SL01:schoolloopbaan": "OVa.SL01:schoolloopbaan",
    "PaO.LL01": "OVa.LL01",
    "PaO.LL02": "OVa.LL02",
    "PaO.LL03": "OVa.LL03",
    "PaO.LL04": "OVa.LL04",
    "PaO.LL05": "OVa.LL05",
    "PaO.LL06": "OVa.LL06",
    "PaO.LL07": "OVa.LL07",
    "PaO.LL08": "OVa.LL08",
    "PaO.LL09": "OVa.LL09",
    "PaO.LL10": "OVa.LL10",
    "PaO.LL11": "OVa.LL11",
    "PaO.OV01": "OVa.OV01",
    "PaO.OV03": "OVa.OV03",
    "PaO.TR01": "OVa.TR05",
    "PaO.TR02": "OVa.TR06",
    "PaO.CL01": "OVa.CL01",
}
for _new, _src in _PAO_FROM_OVA.items():
    _r = _RULES[_src]
    _rule(
        _new,
        _r.severity,
        _r.nl.replace("een overstapdossier", "een SWV-dossier"),
        _r.en.replace("an overstapdossier", "an SWV dossier"),
    )
_rule(
    "PaO.SO02",
    E,
    "In een SWV-dossier is de soort overstap POSWV of VOSWV.",
    "In an SWV dossier the transfer kind must be POSWV or VOSWV.",
)
_rule(
    "PaO.LL12",
    E,
    "In een SWV-dossier zijn BSN en onderwijsnummer van de leerling niet toegestaan.",
    "In an SWV dossier the pupil's BSN and onderwijsnummer are not allowed.",
)
for _i, (_name_nl, _name_en) in enumerate(
    (
        ("'afkomstig van peuterspeelzaal'", "'from a playgroup'"),
        ("de naam van de peuterspeelzaal", "the playgroup's name"),
        ("voorschoolse gegevens", "pre-school data"),
        ("vroegschoolse gegevens", "early-school data"),
    ),
    start=1,
):
    _rule(
        f"PaO.VV0{_i}",
        E,
        f"In een VO SWV-dossier zijn {_name_nl} niet toegestaan.",
        f"In a secondary-school SWV dossier {_name_en} are not allowed.",
    )
_rule(
    "PaO.EB01",
    E,
    "In een PO SWV-dossier is het blok eindtoets basisonderwijs niet toegestaan.",
    "In a primary-school SWV dossier the final test block is not allowed.",
)
for _i, (_name_nl, _name_en) in enumerate(
    (
        ("Bevorderd", "promotion"),
        ("Examens en uitslagen", "exams and results"),
        ("VO vakresultaat", "secondary subject results"),
        ("Certificaat", "certificates"),
        ("Competentie", "competences"),
        ("Stages", "work placements"),
        ("Overige VO-MBO gegevens", "other secondary-to-vocational data"),
    ),
    start=1,
):
    _rule(
        f"PaO.VM0{_i}",
        E,
        f"In een PO SWV-dossier is het blok '{_name_nl}' niet toegestaan.",
        f"In a primary-school SWV dossier the {_name_en} block is not allowed.",
    )
_rule(
    "PaO.OV05",
    E,
    "In een SWV-dossier is een banknummer van een verzorger niet toegestaan.",
    "In an SWV dossier a carer's bank account number is not allowed.",
)


# --- identifiers (GW) --------------------------------------------------------------------------
_rule(
    "GW.BSN01",
    E,
    "Het BSN bestaat niet uit 9 cijfers of voldoet niet aan de elfproef.",
    "The BSN is not 9 digits or fails the eleven test.",
)
_rule(
    "GW.OWN01",
    E,
    "Het onderwijsnummer bestaat niet uit 9 cijfers beginnend met 10, of de controle faalt.",
    "The onderwijsnummer is not 9 digits starting with 10, or its check fails.",
)
_rule(
    "GW.BRIN01",
    E,
    "De BRIN-code bestaat niet uit 2 cijfers gevolgd door 2 hoofdletters.",
    "The BRIN code is not 2 digits followed by 2 capital letters.",
)
_rule(
    "GW.VEST01",
    E,
    "De vestigingscode bestaat niet uit 2 cijfers.",
    "The branch code (vestigingscode) is not 2 digits.",
)

# --- dates (GW) --------------------------------------------------------------------------------
_rule(
    "GW.DAT01",
    E,
    "De geboortedatum van de leerling ligt in de toekomst.",
    "The pupil's date of birth is in the future.",
)
_rule(
    "GW.DAT02",
    E,
    "De inzagedatum ligt in de toekomst.",
    "The review date (inzagedatum) is in the future.",
)
_rule(
    "GW.DAT03",
    E,
    "De aanmaakdatum van het dossier ligt in de toekomst.",
    "The dossier's creation date is in the future.",
)
_rule(
    "GW.DAT04",
    W,
    "Een begindatum ligt na de bijbehorende einddatum.",
    "A start date lies after its end date.",
)

# --- attachments (GW) ------------------------------------------------------------------------
_rule(
    "GW.DOC01",
    E,
    "De inhoud van de bijlage is geen geldige Base64-codering.",
    "The attachment content is not valid Base64.",
)
_rule(
    "GW.DOC02",
    E,
    "De inhoud van de bijlage is geen ZIP-bestand.",
    "The attachment content is not a ZIP file.",
)
_rule(
    "GW.DOC03",
    W,
    "Het ZIP-bestand van de bijlage is onvolledig: de inhoudsopgave is onleesbaar.",
    "The attachment's ZIP file is incomplete: its central directory cannot be read.",
)
_rule(
    "GW.DOC04",
    E,
    "Het bestandstype van de bijlage is niet toegestaan (toegestaan: PDF, JPG, PNG, DOC, DOCX, "
    "ODF, XLS, XLSX, TXT, PPT, PPTX).",
    "The attachment's file type is not allowed (allowed: PDF, JPG, PNG, DOC, DOCX, ODF, XLS, "
    "XLSX, TXT, PPT, PPTX).",
    standard="document/bestandsnaam",
)
_rule(
    "GW.DOC05",
    E,
    "De bestandsnaam van de bijlage bevat een pad of verboden tekens.",
    "The attachment's file name contains a path or forbidden characters.",
)


def all_rules() -> list[Rule]:
    """Every rule, in definition order (for docs and tests)."""
    return list(_RULES.values())


def rule(rid: str) -> Rule:
    return _RULES[rid]


# ==============================================================================================
# helpers
# ==============================================================================================


def element_path(el: etree._Element, suffix: str | None = None) -> str:
    """``/dossier/huidigeschool/leerling/bsn``; ``[n]`` (1-based) where siblings share a name."""
    parts: list[str] = []
    node: etree._Element | None = el
    while node is not None:
        name = etree.QName(node).localname
        parent = node.getparent()
        if parent is not None:
            same = [c for c in parent if c.tag == node.tag]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        parts.append(name)
        node = parent
    path = "/" + "/".join(reversed(parts))
    return f"{path}/{suffix}" if suffix else path


def _text(el: etree._Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _child(el: etree._Element | None, name: str) -> etree._Element | None:
    if el is None:
        return None
    return el.find(q(name))


def _children(el: etree._Element | None, name: str) -> list[etree._Element]:
    return [] if el is None else el.findall(q(name))


def _is_true(el: etree._Element | None) -> bool:
    """xs:boolean true ("true" or "1")."""
    return _text(el) in ("true", "1")


def _date(el: etree._Element | None) -> date | None:
    """An xs:date value (an optional time zone suffix is ignored), or None."""
    m = re.match(r"(\d{4})-(\d{2})-(\d{2})", _text(el))
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


# ==============================================================================================
# the engine
# ==============================================================================================


class _Ctx:
    def __init__(self, root: etree._Element, now: datetime) -> None:
        self.root = root
        self.today_limit = (now + CLOCK_SLACK).date()
        self.findings: list[Finding] = []
        self.overdrachtsoort = _text(_child(root, "overdrachtsoort"))
        self.metadata = _child(root, "metadata")
        self.overstap = _text(_child(self.metadata, "overstap"))
        self.school = _child(root, "huidigeschool")
        self.leerling = _child(self.school, "leerling")
        self.profile = PROFILES.get(self.overdrachtsoort)
        self.excluded_data = True

    @property
    def ova(self) -> bool:
        return self.overdrachtsoort == OVERSTAPDOSSIER

    def report(self, rid: str, el: etree._Element, suffix: str | None = None) -> None:
        r = _RULES[rid]
        self.findings.append(
            Finding(
                code=r.code,
                severity=r.severity,
                path=element_path(el, suffix),
                message_nl=r.nl,
                message_en=r.en,
                line=el.sourceline if isinstance(el.sourceline, int) else None,
            )
        )

    def iter(self, name: str) -> Iterator[etree._Element]:
        return self.root.iter(q(name))


_Check = Callable[[_Ctx], None]
_CHECKS: list[_Check] = []


def _check(fn: _Check) -> _Check:
    _CHECKS.append(fn)
    return fn


def check_rules(
    root: etree._Element, *, now: datetime, excluded_data: bool = True
) -> list[Finding]:
    """All business-rule findings for a schema-valid dossier root (errors and warnings).

    ``excluded_data=False`` leaves out the findings for data of VERBODEN / OPT-UIT categories:
    for a sender that validates a school's export before ``minimise`` removes that data.
    """
    if root.tag != q("dossier"):
        raise ValueError("check_rules expects the OSO 2019 dossier root element")
    ctx = _Ctx(root, now)
    ctx.excluded_data = excluded_data
    for fn in _CHECKS:
        fn(ctx)
    return ctx.findings


# --- categorie_uitlevering -----------------------------------------------------------------------


def category_findings(root: etree._Element, *, include_required: bool = True) -> list[Finding]:
    """Findings of the category rules OS.cat01 … OS.cat16.

    With ``include_required=False`` only the "data present that may not be shared" findings
    (VERBODEN / OPT-UIT) are returned: what a receiver must refuse.
    """
    ctx = _Ctx(root, datetime.min)
    block = _child(ctx.metadata, "categorie_uitlevering")
    if block is None:
        return []
    for c in CATEGORIES:
        _category(ctx, c, block, include_required=include_required)
    return ctx.findings


def _category(ctx: _Ctx, c: Category, block: etree._Element, *, include_required: bool) -> None:
    status = cats.declared_status(ctx.root, c)
    if status == Uitlevering.VERPLICHT and include_required and not c.schema_required:
        if not cats.is_present(ctx.root, c):
            decl = _child(block, c.element)
            assert decl is not None
            ctx.report(f"{c.rule}:verplicht", decl)
    elif status in EXCLUDED and ctx.excluded_data:
        variant = "verboden" if status == Uitlevering.VERBODEN else "opt-uit"
        for el in cats.category_elements(ctx.root, c):
            ctx.report(f"{c.rule}:{variant}", el)


@_check
def _categories(ctx: _Ctx) -> None:
    block = _child(ctx.metadata, "categorie_uitlevering")
    if block is not None:
        for c in CATEGORIES:
            _category(ctx, c, block, include_required=True)


# --- code lists ----------------------------------------------------------------------------------


def _code_list_targets(root: etree._Element, cl: CodeList) -> Iterator[etree._Element]:
    for selector in cl.selectors:
        parent_name, _, child_name = selector.rpartition("/")
        for el in root.iter(q(child_name)):
            parent = el.getparent()
            if not parent_name or (parent is not None and parent.tag == q(parent_name)):
                yield el


@_check
def _code_lists(ctx: _Ctx) -> None:
    for cl in CODE_LISTS:
        for el in _code_list_targets(ctx.root, cl):
            if _text(el) not in cl.values:
                ctx.report(cl.code, el)


# --- OG rules ----------------------------------------------------------------------------------


@_check
def _og(ctx: _Ctx) -> None:
    for comm in ctx.iter("communicatie"):
        if _text(_child(comm, "soort")) == "e-mail":
            nummer = _child(comm, "nummer")
            if nummer is not None and not email_is_valid(_text(nummer)):
                ctx.report("OG.01", nummer)
    versie = _child(ctx.metadata, "standaardversie")
    if versie is not None and _text(versie) != STANDAARDVERSIE:
        ctx.report("OG.02", versie)
    for el in ctx.iter("lwoo_einddatum"):
        if not re.fullmatch(r"\d{4}-07-31", _text(el)):
            ctx.report("OG.03", el)
    for verzorger in ctx.iter("verzorger"):
        odatum = _child(verzorger, "overlijdensdatum")
        if odatum is not None and not _is_true(_child(verzorger, "overleden")):
            ctx.report("OG.04", odatum)
    for arts in ctx.iter("huisarts"):
        for name in ("roepnaam", "geslacht"):
            for el in _children(arts, name):
                ctx.report("OG.05", el)
        geheim = _child(arts, "adresgeheim")
        if _is_true(geheim):
            assert geheim is not None
            ctx.report("OG.05", geheim)


# --- dossier profiles ---------------------------------------------------------------------------

#: Profile (by overdrachtsoort) → rule prefix.
PROFILES = {OVERSTAPDOSSIER: "OVa", BINNENBRIN: "OVb", SWV_DOSSIER: "PaO"}
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


def decode_attachment(text: str) -> bytes | None:
    """The bytes of a base64 ``bestandsinhoud`` (whitespace ignored), or None if not base64."""
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


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
        raw = decode_attachment(inhoud.text or "")
        if raw is None:
            ctx.report("GW.DOC01", inhoud)
        elif not raw.startswith(_ZIP_MAGIC):
            ctx.report("GW.DOC02", inhoud)
        elif not _zip_directory_readable(raw):
            ctx.report("GW.DOC03", inhoud)


def _zip_directory_readable(raw: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        return False
    return True
