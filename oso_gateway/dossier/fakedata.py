"""Built-in word lists for synthetic OSO dossiers (see ``generator.py``).

Everything here is invented or generic: common Dutch given names and surnames (no combination
refers to a real person), generic street names, real place names with invented postcodes, and
fictional schools, health practices and organisations. No real pupil data is used anywhere.

E-mail addresses and websites use the reserved ``.example`` top-level domain (RFC 2606), so a
generated address can never reach a real mailbox.
"""

from __future__ import annotations

from typing import Final

#: Given names by geslacht code (codelist 14: "1" = vrouw, "2" = man).
FIRST_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "1": (
        "Emma",
        "Julia",
        "Mila",
        "Tess",
        "Sophie",
        "Zoë",
        "Sara",
        "Nora",
        "Yara",
        "Eva",
        "Liv",
        "Lotte",
        "Anna",
        "Noor",
        "Saar",
        "Evi",
        "Lieke",
        "Fenna",
        "Roos",
        "Fleur",
        "Isa",
        "Maud",
        "Femke",
        "Sanne",
        "Lisa",
        "Anouk",
        "Iris",
        "Jasmijn",
        "Hanna",
        "Elin",
        "Lynn",
        "Floor",
        "Vera",
        "Lana",
        "Amira",
        "Ilse",
        "Nina",
        "Sofie",
        "Esmee",
        "Bo",
        "Johanna",
        "Maria",
        "Cornelia",
        "Wilhelmina",
        "Hendrika",
        "Geertruida",
        "Catharina",
    ),
    "2": (
        "Noah",
        "Sem",
        "Liam",
        "Lucas",
        "Daan",
        "Finn",
        "Levi",
        "Luuk",
        "Mees",
        "James",
        "Milan",
        "Sam",
        "Jesse",
        "Bram",
        "Thijs",
        "Thomas",
        "Ruben",
        "Julian",
        "Jens",
        "Lars",
        "Stijn",
        "Tim",
        "Gijs",
        "Mats",
        "Siem",
        "Hugo",
        "Floris",
        "Teun",
        "Ties",
        "Jayden",
        "Adam",
        "Mohammed",
        "Ryan",
        "Olivier",
        "Niels",
        "Joep",
        "Koen",
        "Wessel",
        "Pepijn",
        "Johannes",
        "Cornelis",
        "Hendrik",
        "Jacobus",
        "Petrus",
        "Willem",
        "Gerardus",
        "Adrianus",
    ),
}

#: (voorvoegsel, achternaam); an empty voorvoegsel means none.
SURNAMES: Final[tuple[tuple[str, str], ...]] = (
    ("de", "Jong"),
    ("", "Jansen"),
    ("de", "Vries"),
    ("van den", "Berg"),
    ("van", "Dijk"),
    ("", "Bakker"),
    ("", "Janssen"),
    ("", "Visser"),
    ("", "Smit"),
    ("", "Meijer"),
    ("de", "Boer"),
    ("", "Mulder"),
    ("de", "Groot"),
    ("", "Bos"),
    ("", "Vos"),
    ("", "Peters"),
    ("", "Hendriks"),
    ("van", "Leeuwen"),
    ("", "Dekker"),
    ("", "Brouwer"),
    ("de", "Wit"),
    ("", "Dijkstra"),
    ("", "Smits"),
    ("de", "Graaf"),
    ("van der", "Meer"),
    ("van der", "Linden"),
    ("", "Kok"),
    ("", "Jacobs"),
    ("de", "Haan"),
    ("", "Vermeulen"),
    ("van den", "Heuvel"),
    ("van der", "Veen"),
    ("van den", "Broek"),
    ("de", "Bruijn"),
    ("van der", "Heijden"),
    ("", "Schouten"),
    ("van", "Beek"),
    ("", "Willems"),
    ("van", "Vliet"),
    ("van de", "Ven"),
    ("", "Hoekstra"),
    ("", "Maas"),
    ("", "Verhoeven"),
    ("", "Koster"),
    ("van", "Dam"),
    ("van der", "Wal"),
    ("", "Prins"),
    ("", "Blom"),
    ("", "Huisman"),
    ("de", "Koning"),
    ("van", "Wijk"),
    ("", "Kuipers"),
    ("", "Postma"),
    ("", "Kramer"),
    ("van", "Doorn"),
    ("", "Yilmaz"),
    ("", "Aydın"),
    ("el", "Amrani"),
    ("", "Nguyen"),
    ("", "Öztürk"),
    ("ter", "Horst"),
    ("", "Wouters"),
    ("van 't", "Hof"),
)

#: Generic Dutch street names (found in many towns; no address here identifies anyone).
STREETS: Final[tuple[str, ...]] = (
    "Dorpsstraat",
    "Kerkstraat",
    "Schoolstraat",
    "Molenweg",
    "Stationsweg",
    "Julianastraat",
    "Beatrixlaan",
    "Wilhelminastraat",
    "Eikenlaan",
    "Berkenlaan",
    "Lindelaan",
    "Kastanjelaan",
    "Nieuwstraat",
    "Marktstraat",
    "Hoofdstraat",
    "Parklaan",
    "Irisstraat",
    "Tulpstraat",
    "Merelstraat",
    "Zwaluwlaan",
    "Burgemeester de Withstraat",
    "Prins Hendrikstraat",
    "Oranjestraat",
    "Sportlaan",
    "Vondelstraat",
    "Rembrandtlaan",
    "Beukenhof",
    "Esdoornlaan",
    "Populierenweg",
    "Wilgenhof",
    "Klaverweide",
    "Zonnebloemstraat",
    "Korenbloemlaan",
    "Havenstraat",
    "Dijkweg",
    "Veldweg",
    "Achterweg",
    "Rozengracht",
    "Lijsterbeslaan",
)

#: (plaats, gemeente, first two postcode digits, netnummer). Postcodes are drawn at random
#: within the region, so they need not exist.
PLACES: Final[tuple[tuple[str, str, str, str], ...]] = (
    ("Apeldoorn", "Apeldoorn", "73", "055"),
    ("Amersfoort", "Amersfoort", "38", "033"),
    ("Zwolle", "Zwolle", "80", "038"),
    ("Deventer", "Deventer", "74", "0570"),
    ("Leiden", "Leiden", "23", "071"),
    ("Haarlem", "Haarlem", "20", "023"),
    ("Utrecht", "Utrecht", "35", "030"),
    ("Nijmegen", "Nijmegen", "65", "024"),
    ("Groningen", "Groningen", "97", "050"),
    ("Leeuwarden", "Leeuwarden", "89", "058"),
    ("Tilburg", "Tilburg", "50", "013"),
    ("Breda", "Breda", "48", "076"),
    ("Eindhoven", "Eindhoven", "56", "040"),
    ("Maastricht", "Maastricht", "62", "043"),
    ("Alkmaar", "Alkmaar", "18", "072"),
    ("Hoorn", "Hoorn", "16", "0229"),
    ("Gouda", "Gouda", "28", "0182"),
    ("Delft", "Delft", "26", "015"),
    ("Ede", "Ede", "67", "0318"),
    ("Veenendaal", "Veenendaal", "39", "0318"),
    ("Harderwijk", "Harderwijk", "38", "0341"),
    ("Assen", "Assen", "94", "0592"),
    ("Emmen", "Emmen", "78", "0591"),
    ("Middelburg", "Middelburg", "43", "0118"),
)

#: Letters allowed in the letter part of a generated postcode (no SA, SD or SS is ever formed
#: because S is not used).
POSTCODE_LETTERS: Final[str] = "ABCDEFGHJKLMNPRTVWXZ"

PEUTERSPEELZALEN: Final[tuple[str, ...]] = (
    "Peuterspeelzaal Het Hummelhuis",
    "Peutergroep De Kikkertjes",
    "Peuterspeelzaal Ukkepuk",
    "Kinderopvang De Speelhoek",
    "Peuterspeelzaal Dikkertje Dap",
)

HUISARTSPRAKTIJKEN: Final[tuple[str, ...]] = (
    "Huisartsenpraktijk De Linde",
    "Gezondheidscentrum Het Anker",
    "Huisartsen Oostpoort",
    "Huisartsenpraktijk Molenzicht",
)

INSTANTIES: Final[tuple[str, ...]] = (
    "Onderwijsadviesbureau Noord",
    "Centrum voor Jeugd en Gezin",
    "Praktijk voor Orthopedagogiek",
    "Kinderpraktijk De Brug",
    "Expertisecentrum Leren",
)

#: Fictional names for earlier schools in a pupil's school career.
OTHER_SCHOOL_NAMES: Final[tuple[str, ...]] = (
    "OBS De Wilgenstam",
    "CBS De Ark",
    "Basisschool Het Startpunt",
    "RKBS Sint Jozef",
    "Daltonschool De Kring",
    "Montessorischool De Zevensprong",
)

STAGE_INSTELLINGEN: Final[tuple[str, ...]] = (
    "Woonzorgcentrum De Hoge Weide",
    "Sportvereniging Vitesse '22",
    "Bibliotheek Centrum",
    "Dierenasiel Het Baken",
    "Voedselbank Regio Midden",
)

GROEPSNAMEN_PO: Final[tuple[str, ...]] = (
    "Dolfijnen",
    "Uilen",
    "Vossen",
    "Egels",
    "Zeehonden",
    "Pinguïns",
    "Giraffen",
    "Bevers",
)

#: Short Dutch free texts for the fields that carry them.
ARGUMENTATIE: Final[tuple[str, ...]] = (
    "De leerling werkt zelfstandig en plant het werk goed.",
    "Sterk in taal, heeft bij rekenen soms extra uitleg nodig.",
    "Gemotiveerde leerling met een brede belangstelling.",
    "Goede werkhouding; heeft baat bij duidelijke structuur.",
    "Leerresultaten zijn stabiel over de afgelopen jaren.",
)

AANDACHTSPUNTEN: Final[tuple[str, ...]] = (
    "Heeft baat bij een vaste plek in de klas en een duidelijke dagplanning.",
    "Extra tijd bij toetsen gewenst in verband met dyslexie.",
    "Let op de aansluiting met de mentor in de eerste weken.",
    "Werkt graag samen; stimuleer het zelfstandig plannen.",
)

REDEN_NIET_AKKOORD: Final[tuple[str, ...]] = (
    "Ouders vinden het advies te laag.",
    "Ouders zijn het niet eens met de beschrijving van de werkhouding.",
)

GERICHT_OP: Final[tuple[str, ...]] = (
    "rekenvaardigheid",
    "begrijpend lezen",
    "spelling",
    "technisch lezen",
    "werkhouding",
    "sociaal-emotionele ontwikkeling",
    "plannen en organiseren",
)

#: (code from codelist 23, description) of diagnoses used in generated dossiers.
DIAGNOSES: Final[tuple[tuple[str, str], ...]] = (
    ("F81.0", "Dyslexie"),
    ("F81.2", "Dyscalculie"),
    ("F90.0", "ADHD"),
    ("F84.5", "Syndroom van Asperger"),
)

#: VO-advies (codelist 2) with a description as used on a pupil report.
ADVIEZEN: Final[tuple[tuple[str, str], ...]] = (
    ("10", "praktijkonderwijs"),
    ("20", "vmbo basisberoepsgerichte leerweg"),
    ("21", "vmbo basis-/kaderberoepsgerichte leerweg"),
    ("30", "vmbo kaderberoepsgerichte leerweg"),
    ("40", "vmbo gemengde/theoretische leerweg"),
    ("41", "vmbo gemengde/theoretische leerweg / havo"),
    ("50", "havo"),
    ("51", "havo / vwo"),
    ("60", "vwo"),
)

#: Eindtoets kinds (codelist 42) with the standaardscore range of that toets.
EINDTOETSEN: Final[tuple[tuple[str, str, int, int], ...]] = (
    ("0011", "Centrale Eindtoets", 501, 550),
    ("0012", "Route 8", 100, 300),
    ("0013", "IEP Eindtoets", 50, 100),
)

#: Norm-referenced tests of the pupil monitoring system, as listed in the official examples:
#: (eldtoetscode, leergebied, toetsnaam).
LVS_TOETSEN: Final[tuple[tuple[str, str, str], ...]] = (
    ("RW2006-12-155", "rekenen", "Rekenen-Wiskunde 2006"),
    ("BLZ07-20-138", "begrijpend lezen", "Begrijpend lezen 2007"),
    ("DREM8", "technisch lezen", "Drempelonderzoek 678 2010 Technisch lezen"),
)

#: Subjects of primary school reports.
VAKKEN_PO: Final[tuple[str, ...]] = (
    "Rekenen",
    "Taal",
    "Spelling",
    "Begrijpend lezen",
    "Technisch lezen",
    "Aardrijkskunde",
    "Geschiedenis",
    "Natuur en techniek",
    "Engels",
)

#: Secondary school subjects as (4-digit vakcode, name). The codes are illustrative.
VAKKEN_VO: Final[tuple[tuple[str, str], ...]] = (
    ("0001", "Nederlandse taal"),
    ("0002", "Engelse taal"),
    ("0003", "Wiskunde"),
    ("0004", "Geschiedenis"),
    ("0005", "Aardrijkskunde"),
    ("0006", "Biologie"),
    ("0007", "Nask"),
    ("0008", "Lichamelijke opvoeding"),
    ("0009", "Duitse taal"),
    ("0010", "Franse taal"),
    ("0011", "Economie"),
    ("0012", "Beeldende vorming"),
)

#: VO programmes as (4-digit elementcode, description, schoolsoortomschrijving, leerjaren).
#: The codes are illustrative.
VO_PROGRAMMAS: Final[tuple[tuple[str, str, str, int], ...]] = (
    ("0110", "vmbo basisberoepsgerichte leerweg", "VMBO-B", 4),
    ("0120", "vmbo kaderberoepsgerichte leerweg", "VMBO-K", 4),
    ("0140", "vmbo theoretische leerweg", "VMBO-T", 4),
    ("0150", "havo", "HAVO", 5),
    ("0160", "vwo", "VWO", 6),
)

DOCUMENT_KINDS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    # (bestandsnaam stem and extension, omschrijving)
    "overig": (
        ("groepsplan.pdf", "Groepsplan"),
        ("portfolio.pdf", "Portfolio"),
        ("rapport.pdf", "Rapport"),
        ("observatie.docx", "Observatieverslag"),
        ("leerlingbespreking.txt", "Verslag leerlingbespreking"),
    ),
    "toelichting": (("toelichting-onderwijsbehoeften.pdf", "Toelichting onderwijsbehoeften"),),
    "diagnose": (("onderzoeksverslag.pdf", "Diagnostisch onderzoek verklaring"),),
    "handelingsplan": (("handelingsplan.pdf", "Handelingsplan"),),
    "opp": (("opp.docx", "Ontwikkelingsperspectiefplan"),),
    "verzuim": (("verzuimoverzicht.pdf", "Overzicht verzuim"),),
    "eindtoets": (("eindtoets-leerlingrapport.pdf", "Leerlingrapport eindtoets"),),
    "toets": (("toetsuitslag.png", "Uitslag toets"),),
}
