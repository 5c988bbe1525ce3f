"""The gateway's own rules (GW.*): identifiers, dates against the clock, attachments.

Registered at import, after ``catalogue_profiles``.
"""

from __future__ import annotations

from oso_gateway.dossier.rules.registry import (
    E,
    W,
    _rule,
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
