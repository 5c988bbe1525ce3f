"""Rules of the standard itself: categories (OS.cat*), code lists (CLnn), common rules (OG.*).

Registered at import, in the order ``all_rules`` and ``docs/rules.md`` list them.
"""

from __future__ import annotations

from oso_gateway.dossier.categories import CATEGORIES
from oso_gateway.dossier.codelists import (
    CODE_LISTS,
)
from oso_gateway.dossier.rules.registry import (
    STANDAARDVERSIE,
    E,
    _rule,
)

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
