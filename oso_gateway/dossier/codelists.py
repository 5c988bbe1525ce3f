"""Code lists of the OSO gegevensset 2019 that the standard's validation checks.

The 2019 schema leaves most coded fields as free strings; the standard's validation checks them
against the numbered lists of "OSO codelijsten". This module holds the values of every list that
validation checks for version 2019.1, and which elements carry each list. Lists that version 2019.1
no longer checks (3, 12, 32, 34, 38, 39, 40: their fields were removed) are not here.
"""

from __future__ import annotations

from dataclasses import dataclass

from oso_gateway.dossier.categories import CATEGORIES, Uitlevering

_ADVIES_VO = frozenset(
    {"01", "10", "20", "21", "22", "23", "30", "31", "32", "33", "34", "35", "40", "41", "42"}
    | {"43", "44", "50", "51", "52", "60", "61", "70", "80"}
)
_VVE_PROGRAMMA = frozenset(str(n) for n in range(1, 16))

OVERSTAP_KINDS = frozenset(
    {"VSPO", "VSWEC", "POPO", "POWEC", "POVO", "VOVO", "VOMBO", "VOHBO", "VOWO", "WECWEC"}
    | {"WECVO", "WECMBO", "POSWV", "VOSWV", "WECHBO", "WECWO", "OVERIG"}
)
#: Overstap kinds allowed in the "overstapdossier" profile (business rule OVa.OS02).
OVERSTAP_PROFILE_KINDS = frozenset({"POPO", "POVO", "VOVO"})
OVERDRACHTSOORTEN = frozenset({"overstapdossier", "overdrachtbinnenbrin", "swv-dossier"})
DEELDOSSIERS = frozenset({"LAS", "LVS", "LASLVS", "TIB"})
AKKOORD = frozenset({"Ja", "Nee", "Onbekend"})
SOORT_ADRES = frozenset({"bezoek", "post", "gba"})
COMMUNICATIE_SOORT = frozenset({"e-mail", "telefoon"})
COMMUNICATIE_AANDUIDING = frozenset({"werk", "prive", "overig"})
GESLACHT = frozenset({"0", "1", "2"})
CATEGORIE_UITLEVERING = frozenset(u.value for u in Uitlevering)


@dataclass(frozen=True, kw_only=True)
class CodeList:
    """A code list check: the values allowed in the elements at ``selectors``.

    A selector is ``"parent/child"`` (the child element, wherever such a parent occurs) or a
    single local name (that element anywhere in the dossier).
    """

    number: int
    name_nl: str
    name_en: str
    selectors: tuple[str, ...]
    values: frozenset[str]

    @property
    def code(self) -> str:
        """Stable finding code: ``CL`` + the list's number in OSO codelijsten."""
        return f"CL{self.number:02d}"


CODE_LISTS: tuple[CodeList, ...] = (
    CodeList(
        number=2,
        name_nl="Advies VO",
        name_en="secondary school advice",
        selectors=(
            "overstapadvies/advies",
            "overstapadvies/wensouders",
            "overstapadvies/wensleerling",
            "overstapadvies/herzienadvies",
        ),
        values=_ADVIES_VO,
    ),
    CodeList(
        number=4,
        name_nl="Communicatie soort",
        name_en="communication kind",
        selectors=("communicatie/soort",),
        values=COMMUNICATIE_SOORT,
    ),
    CodeList(
        number=5,
        name_nl="Communicatie aanduiding",
        name_en="communication use",
        selectors=("communicatie/aanduiding",),
        values=COMMUNICATIE_AANDUIDING,
    ),
    CodeList(
        number=6,
        name_nl="Voorschoolse toeleider",
        name_en="pre-school referrer",
        selectors=("voorschools/codevoorschoolsetoeleider",),
        values=frozenset(str(n) for n in range(1, 10)),
    ),
    CodeList(
        number=7,
        name_nl="Voorschoolse historie",
        name_en="pre-school history",
        selectors=("voorschools/codevoorschoolsehistorie",),
        values=frozenset(str(n) for n in range(1, 6)),
    ),
    CodeList(
        number=8,
        name_nl="Voorschoolse deelname",
        name_en="pre-school participation",
        selectors=("voorschools/codevoorschoolsedeelname",),
        values=frozenset(str(n) for n in range(1, 6)),
    ),
    CodeList(
        number=9,
        name_nl="VVE programma",
        name_en="early education programme",
        selectors=(
            "voorschools/codevoorschoolsprogramma",
            "vroegschools/codevroegschoolsprogramma",
        ),
        values=_VVE_PROGRAMMA,
    ),
    CodeList(number=10, name_nl="NNCA", name_en="NNCA", selectors=("nnca",), values=GESLACHT),
    CodeList(
        number=11,
        name_nl="Referentiescore",
        name_en="reference score",
        selectors=("referentiescore/codereferentiescore",),
        values=frozenset(
            {"AE", "CAE", "IV", "CIV", "FN", "ON", "DLE", "Percentiel", "Percentage", "T-score"}
            | {"Stanine", "DQ", "IQ", "ERK", "C-score", "Norm", "RNTRM", "ZML", "LGH", "AVI"}
            | {"NAZ", "LM", "Standaardscore", "LA"}
        ),
    ),
    CodeList(
        number=13,
        name_nl="Jaargroepen",
        name_en="year group",
        selectors=("jaargroep",),
        values=frozenset({"0", "1", "2", "3", "4", "5", "6", "7", "8"})
        | frozenset({"11", "12", "13", "14", "15", "16", "S", "P"}),
    ),
    CodeList(
        number=14, name_nl="Geslacht", name_en="sex", selectors=("geslacht",), values=GESLACHT
    ),
    CodeList(
        number=15,
        name_nl="Gewicht",
        name_en="pupil weight",
        selectors=("leerlinggewicht",),
        values=frozenset({"0.00", "0.30", "1.20"}),
    ),
    CodeList(
        number=16,
        name_nl="Soort overstap",
        name_en="transfer kind",
        selectors=("metadata/overstap",),
        values=OVERSTAP_KINDS,
    ),
    CodeList(
        number=17,
        name_nl="RVC indicatie",
        name_en="RVC indication",
        selectors=("rvc/rvcindicatie",),
        values=frozenset({"LWOO", "PRO"}),
    ),
    CodeList(
        number=18,
        name_nl="Huisnummer aanduiding",
        name_en="house number designation",
        selectors=("adres/aanduiding",),
        values=frozenset({"TO", "BY"}),
    ),
    CodeList(
        number=19,
        name_nl="Soort adres",
        name_en="address kind",
        selectors=("adres/soortadres",),
        values=SOORT_ADRES,
    ),
    CodeList(
        number=21,
        name_nl="Profiel",
        name_en="profile",
        selectors=("overstapadvies/profiel",),
        values=frozenset({"basis", "plus", "bespreek", "disharmonisch", "ondersteuning"}),
    ),
    CodeList(
        number=22,
        name_nl="Vergelijkingsgroep",
        name_en="comparison group",
        selectors=("referentiescore/codevergelijkingsgroep",),
        values=frozenset({"BB+", "BB", "KB", "GT", "HAVO", "VWO", "Landelijk"}),
    ),
    CodeList(
        number=23,
        name_nl="Diagnose",
        name_en="diagnosis",
        selectors=("diagnose/code",),
        values=frozenset(
            {"F79.VB", "F79.ZB", "HB", "F80", "F81.0", "F81.1", "F81.2", "F81.9", "F82", "F84"}
            | {"F84.0", "F84.2", "F84.5", "F84.nld", "F84.mcdd", "F90", "F90.0", "F90.0+"}
            | {"F90.0-", "F91", "F91.3", "F95", "F95.2", "F41.0", "F43.1", "F43.2", "F50"}
            | {"F92.0", "F93.1", "F94", "Fspd", "G40", "H54.0", "H54.2", "H91.9.d", "H91.9.s"}
            | {"Z62"}
        ),
    ),
    CodeList(
        number=29,
        name_nl="Soort overdracht",
        name_en="handover kind",
        selectors=("overdrachtsoort",),
        values=OVERDRACHTSOORTEN,
    ),
    CodeList(
        number=31,
        name_nl="TLV bekostigingscategorie",
        name_en="TLV funding category",
        selectors=("tlv/tlvcategorie",),
        values=frozenset({"H", "M", "L", "Nvt"}),
    ),
    CodeList(
        number=33,
        name_nl="Deeldossier",
        name_en="partial dossier kind",
        selectors=("metadata/deeldossier",),
        values=DEELDOSSIERS,
    ),
    CodeList(
        number=35,
        name_nl="Examenuitslag",
        name_en="exam result",
        selectors=("examenresultaat/examenuitslag",),
        values=frozenset({"geslaagd", "afgewezen", "herexamen"}),
    ),
    CodeList(
        number=36,
        name_nl="Beoordeling examenvak",
        name_en="exam subject assessment",
        selectors=("resultaatvakkenvo/beoordelingexamenvak",),
        values=frozenset({"voldoende", "onvoldoende"}),
    ),
    CodeList(
        number=37,
        name_nl="Akkoord",
        name_en="agreement",
        selectors=("inzage/akkoord", "inzage/toestemming"),
        values=AKKOORD,
    ),
    CodeList(
        number=41,
        name_nl="Relatie tot kind",
        name_en="relation to child",
        selectors=("verzorger/relatietotkind",),
        values=frozenset(str(n) for n in range(1, 10)),
    ),
    CodeList(
        number=42,
        name_nl="Soort eindtoets",
        name_en="final test kind",
        selectors=("eindtoetsresultaat/toetssoort",),
        values=frozenset({"0011", "0012", "0013", "0014", "0016"}),
    ),
    CodeList(
        number=43,
        name_nl="Niveau eindtoets",
        name_en="final test level",
        selectors=("eindtoetsresultaat/toetsniveau",),
        values=frozenset({"G"}),
    ),
    CodeList(
        number=44,
        name_nl="Wettelijke ontheffing eindtoets",
        name_en="final test exemption",
        selectors=("eindtoetsresultaat/wettelijke_ontheffing",),
        values=frozenset({"J", "N"}),
    ),
    CodeList(
        number=45,
        name_nl="Eindtoets referentieniveau",
        name_en="final test reference level",
        selectors=("onderdeel/ond_referentieniveau", "domein/dom_referentieniveau"),
        values=frozenset({"01", "02", "03", "04"}),
    ),
    CodeList(
        number=46,
        name_nl="Eindtoets onderdeelcode",
        name_en="final test part code",
        selectors=("onderdeel/onderdeelcode",),
        values=frozenset({"8000", "8001"}),
    ),
    CodeList(
        number=47,
        name_nl="Eindtoets domeincode",
        name_en="final test domain code",
        selectors=("domein/domeincode",),
        values=frozenset({"8050", "8051"}),
    ),
    CodeList(
        number=48,
        name_nl="Categorie uitlevering",
        name_en="category delivery",
        selectors=tuple(f"categorie_uitlevering/{c.element}" for c in CATEGORIES),
        values=CATEGORIE_UITLEVERING,
    ),
)

#: File types the standard allows for attached documents (by file name extension, lower case).
#: The standard lists PDF, JPG, PNG, DOC, DOCX, ODF, XLS, XLSX, TXT, PPT, PPTX; we read "ODF" as
#: the OpenDocument family and accept the common spelling "jpeg" of JPG.
DOCUMENT_EXTENSIONS = frozenset(
    {"pdf", "jpg", "jpeg", "png", "doc", "docx", "odf", "odt", "ods", "odp"}
    | {"xls", "xlsx", "txt", "ppt", "pptx"}
)
