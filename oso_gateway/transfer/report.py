"""The parents' report: what was shared about their child, with which school, when (HTML, PDF).

Built from disclosure records only (categories, reasons, dates, schools, digests), so it names
exactly the categories that were sent and withheld, and no other. A record is made when a
dossier is queued; one that was cancelled or failed is told apart from one that was shared
(never sent, or sent without a confirmed receipt), so that the report does not say data was
shared that never left the school. Dutch by default, English on
request. The PDF is drawn with ReportLab (pure Python wheels: no system libraries to install,
unlike WeasyPrint, which needs Debian's pango); the HTML is a single self-contained page.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from oso_gateway.dossier.categories import BY_KEY
from oso_gateway.store import models as m
from oso_gateway.store.disclosures import DisclosureRecord

LANGUAGES = ("nl", "en")

_TEXT: dict[str, dict[str, str]] = {
    "nl": {
        "title": "Overzicht van gedeelde leerlinggegevens",
        "intro": (
            "Dit overzicht laat zien welke gegevens over uw kind de school via de "
            "overstapservice (OSO) heeft doorgegeven: aan welke school, wanneer, en welke "
            "gegevens juist niet zijn gedeeld. Het is gemaakt uit het register dat de school "
            "bij elke overdracht bijhoudt; het dossier zelf wordt daarvoor niet bewaard."
        ),
        "generated": "Opgesteld op",
        "pupil": "Leerling",
        "pupil_ref": "BSN eindigend op {tail}",
        "pupil_ref_onderwijsnummer": "onderwijsnummer eindigend op {tail}",
        "message": "Overdracht",
        "from": "Verzendende school",
        "to": "Ontvangende school",
        "prepared": "Klaargezet op",
        "delivered": "Afgeleverd op",
        "not_delivered": "nog niet afgeleverd",
        "not_delivered_final": "niet afgeleverd",
        "sent": "Gedeelde gegevens (categorieën)",
        "sent_pending": "Te delen gegevens (categorieën)",
        "sent_never": "Klaargezette gegevens, niet gedeeld (categorieën)",
        "sent_unconfirmed": "Verzonden gegevens, ontvangst niet bevestigd (categorieën)",
        "status": "Stand",
        "not_sent": "niet verzonden ({why}): het dossier heeft de school niet verlaten",
        "unconfirmed": (
            "ontvangst niet bevestigd ({why} na {n} verzendpoging(en)): de ontvangende school "
            "kan het dossier toch hebben ontvangen"
        ),
        "in_progress": ("wordt verzonden: {n} verzendpoging(en), nog geen ontvangstbevestiging"),
        "why_cancelled": "geannuleerd",
        "why_failed": "mislukt",
        "withheld": "Niet gedeeld",
        "none": "geen",
        "inzage": "Inzage door ouders",
        "inzage_yes": "ouders hebben het dossier ingezien op {date}",
        "inzage_given": "ouders hebben het dossier ingezien",
        "inzage_no": "geen inzage vastgelegd",
        "inzage_recorded": (
            "ouders hebben het dossier ingezien op {date} ({how}), vastgelegd door de school"
        ),
        "inzage_waived": "inzage is niet gegeven (ontheffing vastgelegd door de school, {date})",
        "zienswijze": "de ouders hebben een zienswijze gegeven",
        "previewed_sent": "zij zagen versie {version}, en die is verstuurd",
        "previewed_other": "zij zagen versie {version}; verstuurd is versie {sent}",
        "receipt": "Bewijs van ontvangst (SHA-256 van de ontvangstbevestiging)",
        "payload": "Vingerafdruk van het verzonden dossier (SHA-256)",
        "empty": "Er zijn geen overdrachten gevonden.",
        "VERBODEN": "mag bij deze overstap niet worden doorgegeven (VERBODEN)",
        "OPT-UIT": "ouders hebben hiervoor geen toestemming gegeven (OPT-UIT)",
        "objection": "bezwaar van de ouders, vastgelegd bij de school",
    },
    "en": {
        "title": "Report of the pupil data that was shared",
        "intro": (
            "This report shows which data about your child the school passed on through the "
            "transfer service (OSO): to which school, when, and which data was not shared. It "
            "is made from the record the school keeps of every transfer; the dossier itself is "
            "not kept for it."
        ),
        "generated": "Prepared on",
        "pupil": "Pupil",
        "pupil_ref": "BSN ending in {tail}",
        "pupil_ref_onderwijsnummer": "onderwijsnummer ending in {tail}",
        "message": "Transfer",
        "from": "Sending school",
        "to": "Receiving school",
        "prepared": "Prepared on",
        "delivered": "Delivered on",
        "not_delivered": "not delivered yet",
        "not_delivered_final": "not delivered",
        "sent": "Data shared (categories)",
        "sent_pending": "Data to be shared (categories)",
        "sent_never": "Data prepared, not shared (categories)",
        "sent_unconfirmed": "Data sent, receipt not confirmed (categories)",
        "status": "Status",
        "not_sent": "not sent ({why}): the dossier did not leave the school",
        "unconfirmed": (
            "receipt not confirmed ({why} after {n} attempt(s)): the receiving school may "
            "still have received the dossier"
        ),
        "in_progress": "being sent: {n} attempt(s) so far, no receipt yet",
        "why_cancelled": "cancelled",
        "why_failed": "failed",
        "withheld": "Not shared",
        "none": "none",
        "inzage": "Parents' review",
        "inzage_yes": "the parents reviewed the dossier on {date}",
        "inzage_given": "the parents reviewed the dossier",
        "inzage_no": "no review recorded",
        "inzage_recorded": (
            "the parents reviewed the dossier on {date} ({how}), recorded by the school"
        ),
        "inzage_waived": "no review (a waiver recorded by the school, {date})",
        "zienswijze": "the parents gave their view",
        "previewed_sent": "they saw version {version}, and that version was sent",
        "previewed_other": "they saw version {version}; version {sent} was sent",
        "receipt": "Proof of receipt (SHA-256 of the receipt)",
        "payload": "Fingerprint of the dossier sent (SHA-256)",
        "empty": "No transfers were found.",
        "VERBODEN": "may not be passed on for this kind of transfer (VERBODEN)",
        "OPT-UIT": "the parents did not consent (OPT-UIT)",
        "objection": "the parents' objection, recorded at the school",
    },
}


#: how the parents had their inzage (``inzage record --how``), in the report's language
_HOW: dict[str, dict[str, str]] = {
    "nl": {"meeting": "gesprek", "paper": "op papier", "digital": "digitaal", "other": "anders"},
    "en": {"meeting": "meeting", "paper": "on paper", "digital": "digitally", "other": "other"},
}


@dataclass(frozen=True, kw_only=True)
class Section:
    heading: str
    rows: tuple[tuple[str, str], ...]
    #: the heading of ``sent``: shared, to be shared, not shared, or sent without a receipt
    sent_heading: str
    sent: tuple[str, ...]
    withheld: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Report:
    language: str
    title: str
    intro: str
    header: tuple[tuple[str, str], ...]
    sections: tuple[Section, ...]
    empty: str
    labels: dict[str, str]


def _label(key: str, language: str) -> str:
    category = BY_KEY.get(key)
    if category is None:
        return key
    return category.label_nl if language == "nl" else category.label_en


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _school(code: str | None, name: str | None) -> str:
    shown = code or "?"
    return f"{name} ({shown})" if name else shown


def build_report(
    records: Sequence[DisclosureRecord],
    *,
    language: str = "nl",
    now: datetime,
    pupil_tail: str | None = None,
    pupil_kind: str = "bsn",
    school_names: Mapping[str, str] | None = None,
) -> Report:
    """The report's content (no rendering yet). ``pupil_kind``: what ``pupil_tail`` ends
    (``bsn`` or ``onderwijsnummer``); ``school_names``: school code → name (the directory's),
    for the sending school (the receiving school's name is kept with the record)."""
    names = school_names or {}
    t = _TEXT[language]
    header = [(t["generated"], _date(now))]
    if pupil_tail:
        ref = "pupil_ref_onderwijsnummer" if pupil_kind == "onderwijsnummer" else "pupil_ref"
        header.append((t["pupil"], t[ref].format(tail=pupil_tail)))
    sections = []
    for r in records:
        inzage = t["inzage_no"]
        if r.inzage and r.inzage.get("inzage") == "true":
            date = r.inzage.get("date")
            inzage = t["inzage_yes"].format(date=date) if date else t["inzage_given"]
        if r.inzage and "recorded" in r.inzage:  # recorded at the gateway (pull workflow)
            when = r.inzage.get("recorded_date") or r.inzage["recorded"]
            key = "inzage_waived" if r.inzage.get("waived") == "true" else "inzage_recorded"
            how = r.inzage.get("how") or "-"
            inzage = t[key].format(date=when, how=_HOW[language].get(how, how))
            if r.inzage.get("zienswijze") == "true":
                inzage += "; " + t["zienswijze"]
            inzage += _previewed(t, r.inzage.get("previewed"), r.payload_digest)
        rows = [
            (t["to"], _school(r.recipient_school, r.recipient_name)),
            (t["from"], _school(r.sending_school, names.get(r.sending_school or ""))),
            (t["prepared"], _date(r.prepared_at)),
            (
                t["delivered"],
                _date(r.delivered_at)
                or t[
                    "not_delivered_final"
                    if r.status in (m.CANCELLED, m.FAILED)
                    else "not_delivered"
                ],
            ),
            (t["inzage"], inzage),
        ]
        sent_heading = t["sent"] if r.delivered_at else t["sent_pending"]
        if r.delivered_at is None and r.status in (m.CANCELLED, m.FAILED):
            why = t["why_cancelled"] if r.status == m.CANCELLED else t["why_failed"]
            if r.attempts:
                rows.append((t["status"], t["unconfirmed"].format(why=why, n=r.attempts)))
                sent_heading = t["sent_unconfirmed"]
            else:
                rows.append((t["status"], t["not_sent"].format(why=why)))
                sent_heading = t["sent_never"]
        elif r.delivered_at is None and r.attempts:  # on the wire, not (yet) confirmed
            rows.append((t["status"], t["in_progress"].format(n=r.attempts)))
            sent_heading = t["sent_unconfirmed"]
        if r.receipt_digest:
            rows.append((t["receipt"], r.receipt_digest))
        if r.payload_digest:
            rows.append((t["payload"], r.payload_digest))
        sections.append(
            Section(
                heading=f"{t['message']} {r.message_id}",
                rows=tuple(rows),
                sent_heading=sent_heading,
                sent=tuple(_label(k, language) for k in r.sent),
                withheld=tuple(
                    f"{_label(k, language)}: {t.get(reason, reason)}" for k, reason in r.withheld
                ),
            )
        )
    return Report(
        language=language,
        title=t["title"],
        intro=t["intro"],
        header=tuple(header),
        sections=tuple(sections),
        empty=t["empty"],
        labels=t,
    )


#: the HTML report's stylesheet: inline in a standalone file, or served apart (``render_html``)
REPORT_CSS = (
    "body{font-family:sans-serif;max-width:48em;margin:2em auto;line-height:1.4}"
    "th{text-align:left;padding-right:1em;vertical-align:top}"
    "section{border-top:1px solid #999;margin-top:1.5em}code{word-break:break-all}"
)


def render_html(report: Report, *, stylesheet: str | None = None) -> str:
    """The report as one HTML page. Without ``stylesheet`` it is a self-contained file (the
    styles inline: ``disclosure report --out r.html``); with it, the page links that URL, which
    serves ``REPORT_CSS`` (the console, whose ``style-src 'self'`` refuses inline styles)."""
    e = html.escape
    t = report.labels
    style = (
        f'<link rel="stylesheet" href="{e(stylesheet)}">'
        if stylesheet is not None
        else f"<style>{REPORT_CSS}</style>"
    )
    parts = [
        f'<!doctype html>\n<html lang="{report.language}"><head><meta charset="utf-8">',
        f"<title>{e(report.title)}</title>",
        style,
        f"</head><body><h1>{e(report.title)}</h1><p>{e(report.intro)}</p><table>",
    ]
    parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in report.header]
    parts.append("</table>")
    if not report.sections:
        parts.append(f"<p>{e(report.empty)}</p>")
    for s in report.sections:
        parts.append(f"<section><h2>{e(s.heading)}</h2><table>")
        parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in s.rows]
        parts.append(f"</table><h3>{e(s.sent_heading)}</h3><ul>")
        parts += [f"<li>{e(x)}</li>" for x in s.sent] or [f"<li>{e(t['none'])}</li>"]
        parts.append(f"</ul><h3>{e(t['withheld'])}</h3><ul>")
        parts += [f"<li>{e(x)}</li>" for x in s.withheld] or [f"<li>{e(t['none'])}</li>"]
        parts.append("</ul></section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def render_pdf(report: Report) -> bytes:
    """The report as a PDF (ReportLab; text is real text, extractable and searchable)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import ListFlowable, Paragraph, SimpleDocTemplate, Spacer, Table

    styles = getSampleStyleSheet()
    e = html.escape
    t = report.labels

    def table(rows: Sequence[tuple[str, str]]) -> Table:
        data = [
            [Paragraph(e(k), styles["BodyText"]), Paragraph(e(v), styles["BodyText"])]
            for k, v in rows
        ]
        return Table(data, colWidths=[6 * cm, 10.5 * cm], hAlign="LEFT")

    def bullets(items: Sequence[str]) -> ListFlowable:
        shown = items or [t["none"]]
        return ListFlowable(
            [Paragraph(e(x), styles["BodyText"]) for x in shown], bulletType="bullet"
        )

    story: list[object] = [
        Paragraph(e(report.title), styles["Title"]),
        Paragraph(e(report.intro), styles["BodyText"]),
        Spacer(1, 0.3 * cm),
        table(report.header),
    ]
    if not report.sections:
        story.append(Paragraph(e(report.empty), styles["BodyText"]))
    for s in report.sections:
        story += [
            Spacer(1, 0.5 * cm),
            Paragraph(e(s.heading), styles["Heading2"]),
            table(s.rows),
            Paragraph(e(s.sent_heading), styles["Heading3"]),
            bullets(s.sent),
            Paragraph(e(t["withheld"]), styles["Heading3"]),
            bullets(s.withheld),
        ]
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out, pagesize=A4, title=report.title, author="oso-gateway", invariant=True
    )
    doc.build(story)
    return out.getvalue()


def _previewed(t: dict[str, str], version: str | None, payload_digest: str | None) -> str:
    """What the parents were shown against what was sent: the inzage's version (the first
    digits of the payload digest the preview computed) and the sent payload's digest."""
    if not version:
        return ""
    sent = (payload_digest or "")[: len(version)]
    if sent == version:
        return "; " + t["previewed_sent"].format(version=version)
    return "; " + t["previewed_other"].format(version=version, sent=sent or "-")
