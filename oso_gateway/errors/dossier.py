"""OSO-E1xx: the dossier is not acceptable (schema, business rules, categories, opt-out)."""

from __future__ import annotations

from oso_gateway.errors.base import RemoteError


class DossierError(RemoteError):
    """The dossier is not acceptable (schema or business rules)."""

    code = "OSO-E100"
    public_message = "The dossier is not valid."


class DossierParseError(DossierError):
    """The dossier bytes are not well-formed XML, or break the parser's bounds (size, depth,
    markup, DTD)."""

    code = "OSO-E101"
    public_message = "The dossier is not well-formed XML or exceeds the parser limits."


class DossierSchemaError(DossierError):
    """The dossier does not validate against our OSO gegevensset 2019.1 XSD; the detail lists
    element paths and schema finding codes."""

    code = "OSO-E102"
    public_message = "The dossier does not conform to the OSO gegevensset 2019 schema."


class DossierRuleError(DossierError):
    """The dossier breaks one or more business rules (OG/OS/OV/PaO/CL/GW codes); the detail
    lists rule codes and element paths."""

    code = "OSO-E103"
    public_message = "The dossier violates an OSO business rule."


class DossierCategoryError(DossierError):
    """A received dossier carries data of a category that is VERBODEN or that the parents opted
    out of."""

    code = "OSO-E104"
    public_message = "The dossier contains a category that may not be shared."


class DossierOptOutError(DossierError):
    """The parents' opt-out cannot be applied: the category is mandatory, or the dossier has no
    categorie_uitlevering block to record it in."""

    code = "OSO-E105"
    public_message = "The opt-out cannot be applied to this dossier category."


class DossierTooLarge(DossierError):
    """The dossier, or the message sealing it, exceeds the largest allowed size (a dossier with
    50 MiB of attachments; ``oso_gateway.limits``): refused before it is queued or sent."""

    code = "OSO-E260"
    http_status = 413
    public_message = "The dossier exceeds the largest allowed size."
