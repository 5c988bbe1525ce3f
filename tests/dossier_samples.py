"""A small, schema-valid OSO 2019 dossier of our own (fictional pupil), for tests that must not
depend on the official examples in ../shared.

``build_dossier()`` returns a fresh root element each call: a POVO overstapdossier that passes
every business rule without a finding. ``SAMPLE_PII`` lists the personal values in it, so tests can
assert that no message leaks them. Helpers edit elements by relative path (local names).
"""

from __future__ import annotations

import base64
import io
import zipfile

from lxml import etree

NS = "http://www.edustandaard.nl/oso_gegevensset/2019/dossier"

#: Fictional personal data used in the sample (names, BSN, birth date, address, phone, e-mail).
SAMPLE_PII = (
    "Fenna",
    "Testdata-Jansen",
    "111222333",
    "2014-05-17",
    "Voorbeeldstraat",
    "9999ZZ",
    "0612345678",
    "ouder@voorbeeld.example",
    "Huisartsnaam",
    "Wilhelmina",
    "Teveel details over thuis",
)


def zip_attachment(name: str = "rapport.pdf", content: bytes = b"%PDF-1.4 testbijlage\n") -> str:
    """Base64 of a real ZIP file holding one member: what ``bestandsinhoud`` carries."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, content)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _document(name: str) -> str:
    return (
        f"<document><bestandsnaam>{name}</bestandsnaam><omschrijving>Bijlage</omschrijving>"
        f"<bestandsinhoud>{zip_attachment(name)}</bestandsinhoud></document>"
    )


def sample_xml(*, overstap: str = "POVO", overdrachtsoort: str = "overstapdossier") -> bytes:
    """The sample dossier as bytes."""
    cats = {
        "metadata": "VERPLICHT",
        "ouderinzage": "VERPLICHT",
        "school": "VERPLICHT",
        "leerling": "VERPLICHT",
        "oudersverzorgers": "VERPLICHT",
        "vve": "VERBODEN",
        "schoolloopbaan": "VERPLICHT",
        "overstapadvies": "VERPLICHT",
        "onderwijsondersteuning": "OPTIONEEL",
        "verzuim": "OPTIONEEL",
        "eindtoetsbo": "OPTIONEEL",
        "toetsresultaten": "OPTIONEEL",
        "handelingsplannen": "OPTIONEEL",
        "cijferlijsten": "OPTIONEEL",
        "vombo": "VERBODEN",
        "bijlagedocs": "OPTIONEEL",
    }
    cat_xml = "".join(f"<cat_{k}>{v}</cat_{k}>" for k, v in cats.items())
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<dossier xmlns="{NS}">
  <metadata>
    <deeldossier>LASLVS</deeldossier>
    <pakketnaam>oso-gateway-tests</pakketnaam>
    <pakketversie>1</pakketversie>
    <datum>2026-03-01</datum>
    <standaardversie>2019.1</standaardversie>
    <validatieversie>2019.1.1</validatieversie>
    <categorie_uitlevering>{cat_xml}</categorie_uitlevering>
    <overstap>{overstap}</overstap>
  </metadata>
  <overdrachtsoort>{overdrachtsoort}</overdrachtsoort>
  <inzage>
    <voorlopigdossier>false</voorlopigdossier>
    <inzage>true</inzage>
    <inzagedatum>2026-03-15</inzagedatum>
    <akkoord>Nee</akkoord>
    <redennietakkoord>Teveel details over thuis</redennietakkoord>
    <toestemming>Ja</toestemming>
  </inzage>
  <huidigeschool>
    <naam>Basisschool De Proef</naam>
    <adreslijst><adres><soortadres>bezoek</soortadres><straat>Schoolpad</straat>
      <nummer>1</nummer><postcode>9999AA</postcode><plaats>Teststad</plaats></adres></adreslijst>
    <communicatielijst><communicatie><soort>telefoon</soort><aanduiding>werk</aanduiding>
      <nummer>0101234567</nummer></communicatie></communicatielijst>
    <brincode>99ZZ</brincode>
    <vestigingscode>00</vestigingscode>
    <aanleverpunt>0</aanleverpunt>
    <soort>BAO</soort>
    <leerling>
      <voornaam>Fenna</voornaam>
      <achternaam>Testdata-Jansen</achternaam>
      <geboortedatum>2014-05-17</geboortedatum>
      <geslacht>1</geslacht>
      <adresgeheim>false</adresgeheim>
      <adreslijst><adres><soortadres>post</soortadres><straat>Voorbeeldstraat</straat>
        <nummer>12</nummer><postcode>9999ZZ</postcode><plaats>Teststad</plaats></adres></adreslijst>
      <communicatielijst><communicatie><soort>e-mail</soort><aanduiding>prive</aanduiding>
        <nummer>ouder@voorbeeld.example</nummer><geheim>false</geheim></communicatie>
      </communicatielijst>
      <bsn>111222333</bsn>
      <leerlingid>L-0001</leerlingid>
      <datuminschrijving>2018-08-20</datuminschrijving>
      <datumuitschrijving>2026-07-31</datumuitschrijving>
      <huisarts><achternaam>Huisartsnaam</achternaam></huisarts>
      <verzorgersaansprakelijk>true</verzorgersaansprakelijk>
      <overstapadvies>
        <advies>60</advies>
        <profiel>basis</profiel>
        <contactnodig>true</contactnodig>
        <contactpersoon>Juf Proef</contactpersoon>
        <contacttelefoon>0101234567</contacttelefoon>
      </overstapadvies>
      <schoolloopbaanlijst><schoolloopbaan><schooljaar>2025-2026</schooljaar>
        <groepscode>8A</groepscode><jaargroep>8</jaargroep><begindatum>2025-08-18</begindatum>
        <einddatum>2026-07-17</einddatum><brincode>99ZZ</brincode>
        <vestigingscode>00</vestigingscode></schoolloopbaan></schoolloopbaanlijst>
      <onderwijsondersteuning>
        <medicijngebruik>false</medicijngebruik>
        <handelingsplan><startdatum>2025-09-01</startdatum><einddatum>2026-01-31</einddatum>
          <isgerichtop>rekenen</isgerichtop>{_document("plan.pdf")}</handelingsplan>
        <tlv><tlvingangdatum>2024-08-01</tlvingangdatum><tlvswvnummer>PO9999</tlvswvnummer>
          <tlvcategorie>L</tlvcategorie><tlvbeschikkingsnummer>B-1</tlvbeschikkingsnummer>
          <tlveinddatum>2026-07-31</tlveinddatum></tlv>
      </onderwijsondersteuning>
      <verzuim><dagdelengeoorloofd>2</dagdelengeoorloofd>
        <contactleerplicht>false</contactleerplicht></verzuim>
      <eindtoets_basisonderwijs>
        <eindtoetsresultaat><toetssoort>0011</toetssoort><toetsniveau>G</toetsniveau>
          <datum_afname>2026-04-15</datum_afname><wettelijke_ontheffing>N</wettelijke_ontheffing>
          <standaardscore>540</standaardscore><toets_advies>havo/vwo</toets_advies>
          <onderdelen><onderdeel><onderdeelcode>8000</onderdeelcode>
            <ond_referentieniveau>03</ond_referentieniveau></onderdeel></onderdelen>
        </eindtoetsresultaat>
        <deelgenomen>true</deelgenomen>
      </eindtoets_basisonderwijs>
      <toetslijst>
        <toets><toetsidentificatie><eldtoetscode>T-001</eldtoetscode></toetsidentificatie>
          <afname><afnamedatum>2025-01-20</afnamedatum><jaargroep>7</jaargroep></afname>
          <resultaat><toetsscore><aantalgoed>30</aantalgoed></toetsscore>
            <referentiescore><codereferentiescore>Stanine</codereferentiescore>
              <codevergelijkingsgroep>Landelijk</codevergelijkingsgroep><waarde>7</waarde>
            </referentiescore></resultaat></toets>
        <toets><toetsidentificatie><eldtoetscode>T-002</eldtoetscode></toetsidentificatie>
          <afname><afnamedatum>2025-06-02</afnamedatum></afname>
          <resultaat><referentiescore><codereferentiescore>AE</codereferentiescore>
            <codevergelijkingsgroep>Landelijk</codevergelijkingsgroep><waarde>B</waarde>
          </referentiescore></resultaat></toets>
      </toetslijst>
      <cijferlijstlijst><cijferlijst><cijferlijstTypelijst><naam>Rapport</naam>
        <score><waarde>7</waarde></score></cijferlijstTypelijst>
        <jaargroep>8</jaargroep></cijferlijst></cijferlijstlijst>
      <overigdocumentlijst>{_document("rapport.pdf")}{_document("foto.jpg")}</overigdocumentlijst>
      <verzorger>
        <voornaam>Wilhelmina</voornaam>
        <achternaam>Testdata-Jansen</achternaam>
        <adresgeheim>false</adresgeheim>
        <communicatielijst><communicatie><soort>telefoon</soort><aanduiding>prive</aanduiding>
          <nummer>0612345678</nummer><geheim>false</geheim><noodnummer>true</noodnummer>
        </communicatie></communicatielijst>
        <relatietotkind>2</relatietotkind>
        <wettigevertegenwoordiger>true</wettigevertegenwoordiger>
      </verzorger>
    </leerling>
  </huidigeschool>
</dossier>
"""
    return text.encode("utf-8")


def build_dossier(
    *, overstap: str = "POVO", overdrachtsoort: str = "overstapdossier"
) -> etree._Element:
    """A fresh root of the sample dossier (parsed with a plain parser: it is our own data)."""
    parser = etree.XMLParser(remove_blank_text=True)
    root = etree.fromstring(sample_xml(overstap=overstap, overdrachtsoort=overdrachtsoort), parser)
    if overdrachtsoort == "swv-dossier":  # the SWV profile forbids the BSN (PaO.LL12) …
        remove(root, "huidigeschool/leerling/bsn")
        if overstap == "POSWV":  # … and the final test in a primary-school SWV dossier (PaO.EB01)
            remove(root, "huidigeschool/leerling/eindtoets_basisonderwijs")
    return root


def q(local: str) -> str:
    return f"{{{NS}}}{local}"


def find(root: etree._Element, path: str) -> etree._Element:
    """The first element at a relative path (local names), or AssertionError."""
    el: etree._Element | None = root
    for step in path.split("/"):
        assert el is not None
        el = el.find(q(step))
        assert el is not None, f"sample has no {path}"
    assert el is not None
    return el


def set_text(root: etree._Element, path: str, text: str) -> etree._Element:
    el = find(root, path)
    el.text = text
    return el


def remove(root: etree._Element, path: str) -> None:
    el = find(root, path)
    parent = el.getparent()
    assert parent is not None
    parent.remove(el)


def add(
    root: etree._Element, parent_path: str, name: str, text: str | None = None
) -> etree._Element:
    parent = root if parent_path == "" else find(root, parent_path)
    el = etree.SubElement(parent, q(name))
    el.text = text
    return el


def set_category(root: etree._Element, key: str, value: str) -> None:
    set_text(root, f"metadata/categorie_uitlevering/cat_{key}", value)
