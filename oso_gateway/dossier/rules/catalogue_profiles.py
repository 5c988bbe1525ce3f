"""Rules of the overstap profiles: overstapdossier (OVa.*), binnen BRIN (OVb.*), SWV (PaO.*).

Registered at import, after ``catalogue_standard``.
"""

from __future__ import annotations

from oso_gateway.dossier.rules.registry import (
    _RULES,
    VALIDATIEVERSIE,
    E,
    W,
    _rule,
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
