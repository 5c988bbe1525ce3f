"""The worst messages we can build, against an ordinary message of the same size.

Issue 13's goal: a message built to make the receiver work (namespace declarations, namespaced
attributes, attributes, elements: as many as fit, in scope of the signed parts; with a forged or a
genuine signature) is refused or opened in at most ``TARGET_RATIO`` times the time of an ordinary
message of the same size (a generated dossier, sealed). For each size this reports the median time
of ``open_message`` on the ordinary message and on each crafted one, what the receiver answered,
and the ratio; the summary gives the worst ratio of the run.

The crafted messages, each padded to the size of the ordinary one:

* ``declarations on the Envelope``: namespace declarations in scope of every signed part (the
  signature stays valid: exclusive C14N ignores unused declarations) — refused by the
  per-document bound (OSO-E231); ``... at the limit``: as many as the bound allows, the rest a
  large ignored header.
* ``namespaced attributes on wsa:To, forged``: one attribute per declared prefix on a signed
  header; the signature no longer matches.
* ``elements in an ignored header``: a flood of empty elements in a header block the receiver
  skips (SOAP: not mustUnderstand).
* ``payload at the limits, genuine``: sealed by a trusted sender: 256 declarations, a deep chain of
  elements with namespaced attributes, then elements with the most attributes each (what made
  exclusive C14N quadratic); and the same message with a forged SignatureValue.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from benchmarks.__main__ import Report
from benchmarks.bench_wss import (
    NOW,
    Parties,
    _dossier,
    _open,
    _parties,
    _seal,
    _size,
    interleaved_medians,
)
from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.errors import GatewayError
from oso_gateway.security.wss import OpenPolicy
from oso_gateway.security.xmlparse import DEFAULT_LIMITS, parse_xml

TARGET_RATIO = 2.0
FULL_SIZES_KB = (256, 2 * 1024, 16 * 1024)
QUICK_SIZES_KB = (256, 2 * 1024)
#: a sealed message is about 1.37x its dossier plus the envelope
_SEAL_GROWTH = 1.37
_ENVELOPE_OPEN = b"<soap:Envelope "
_HEADER_CLOSE = b"</soap:Header>"


def _ordinary(parties: Parties, size: int) -> bytes:
    dossier = _dossier(max(8, int((size - 6 * 1024) / _SEAL_GROWTH) // 1024))
    return _seal(parties, parse_xml(dossier).getroot()).data


def _structured(parties: Parties, size: int) -> bytes:
    """An ordinary message whose dossier is records, not attachments: the generated dossier's
    children repeated up to the size (what a large, structured LAS export looks like), or as far
    as the parser's markup bound allows (a larger one is refused with OSO-E236, so the 16 MB row's
    records dossier is smaller than its attachment dossier: its size is printed)."""
    root = parse_xml(generate_dossier(overstap="POVO", seed=7, now=NOW)).getroot()
    records = list(root)
    one_xml = etree.tostring(root)
    one = len(one_xml)
    markup = one_xml.count(b"<") + one_xml.count(b"=")
    copies = int(size / _SEAL_GROWTH) // one
    copies = min(copies, int(DEFAULT_LIMITS.max_markup * 0.95) // markup)
    for _ in range(max(0, copies - 1)):
        root.extend(copy.deepcopy(record) for record in records)
    return _seal(parties, root).data


def _pad_header(message: bytes, size: int) -> bytes:
    """``message`` grown to ``size`` bytes by an ignored header block holding base64 text."""
    room = size - len(message) - 64
    if room <= 0:
        return message
    filler = base64.b64encode(b"\0" * (room * 3 // 4))[:room]
    block = b"<x:Pad xmlns:x='urn:pad'>" + filler + b"</x:Pad>"
    return message.replace(_HEADER_CLOSE, block + _HEADER_CLOSE, 1)


def _declarations(message: bytes, count: int) -> bytes:
    decls = b"".join(b' xmlns:p%d="urn:n:%d"' % (i, i) for i in range(count))
    return message.replace(_ENVELOPE_OPEN, _ENVELOPE_OPEN + decls[1:] + b" ", 1)


def _shrink_payload(ordinary: bytes, parties: Parties) -> bytes:
    """A small genuine message (the flood, not the dossier, fills the size)."""
    return _seal(parties, parse_xml(_dossier(8)).getroot()).data


def declarations_flood(ordinary: bytes, parties: Parties) -> bytes:
    small = _shrink_payload(ordinary, parties)
    return _declarations(small, max(1, (len(ordinary) - len(small)) // 24))


def declarations_at_limit(ordinary: bytes, parties: Parties) -> bytes:
    """As many declarations as the bounds allow on the Envelope and the Header (in scope of
    every signed part), then ignored header blocks each declaring the most an element may."""
    per = DEFAULT_LIMITS.max_namespaces_per_element
    small = _declarations(_shrink_payload(ordinary, parties), per - 10)
    decls = b"".join(b' xmlns:q%d="urn:q:%d"' % (i, i) for i in range(per))
    small = small.replace(b"<soap:Header", b"<soap:Header" + decls, 1)
    blocks = b""
    for n in range((DEFAULT_LIMITS.max_namespaces - 2 * per) // per):
        decls = b"".join(b' xmlns:r%d="urn:r:%d:%d"' % (i, n, i) for i in range(per))
        blocks += b"<r0:D" + decls + b"/>"
    return _pad_header(small.replace(_HEADER_CLOSE, blocks + _HEADER_CLOSE, 1), len(ordinary))


def namespaced_attributes_forged(ordinary: bytes, parties: Parties) -> bytes:
    small = _shrink_payload(ordinary, parties)
    count = max(1, (len(ordinary) - len(small)) // 40)
    decls = b"".join(b' xmlns:p%d="urn:n:%d"' % (i, i) for i in range(count))
    attrs = b"".join(b' p%d:a="1"' % i for i in range(count))
    data = small.replace(_ENVELOPE_OPEN, _ENVELOPE_OPEN + decls[1:] + b" ", 1)
    return data.replace(b"<wsa:To ", b"<wsa:To" + attrs + b" ", 1)


def elements_flood(ordinary: bytes, parties: Parties) -> bytes:
    small = _shrink_payload(ordinary, parties)
    count = max(1, (len(ordinary) - len(small) - 64) // 4)
    block = b"<f:Flood xmlns:f='urn:flood'>" + b"<a/>" * count + b"</f:Flood>"
    return small.replace(_HEADER_CLOSE, block + _HEADER_CLOSE, 1)


def elements_at_limit(ordinary: bytes, parties: Parties) -> bytes:
    small = _shrink_payload(ordinary, parties)
    most = OpenPolicy().max_envelope_elements - 100
    count = min(most, max(1, (len(ordinary) - len(small)) // 4))
    block = b"<f:Flood xmlns:f='urn:flood'>" + b"<a/>" * count + b"</f:Flood>"
    return _pad_header(small.replace(_HEADER_CLOSE, block + _HEADER_CLOSE, 1), len(ordinary))


def _hostile_payload(size: int) -> etree._Element:
    """A payload at every limit: what made exclusive C14N quadratic, as far as the bounds let."""
    lim = DEFAULT_LIMITS
    per = lim.max_namespaces_per_element
    groups = lim.max_namespaces // per
    parts: list[bytes] = []
    for g in range(groups):
        decls = b" ".join(b'xmlns:p%d="urn:n:%d"' % (g * per + i, g * per + i) for i in range(per))
        parts.append(b"<w " + decls + b">")
    qualified = lim.max_namespaced_attributes - 8
    per_level = min(lim.max_attributes_per_element, 8)
    depth = min(lim.max_depth - groups - 2, qualified // per_level)
    for d in range(depth):
        attrs = b" ".join(b'p%d:a="1"' % ((d * per_level + i) % 128) for i in range(per_level))
        parts.append(b"<c " + attrs + b">")
    most = lim.max_attributes_per_element
    leaf = b"<p0:l " + b" ".join(b'a%d="1"' % i for i in range(most)) + b"/>"
    used = sum(len(p) for p in parts) * 2
    # tokens of a leaf once canonical (<p0:l ...></p0:l>): two tags and its attributes
    room = (lim.max_markup - 4 * (depth + groups) * lim.max_namespaces_per_element) // (most + 2)
    leaves = max(1, min(lim.max_elements - 1000, room, (size - used) // len(leaf)))
    body = b"".join(parts) + leaf * leaves + b"</c>" * depth + b"</w>" * groups
    return parse_xml(body).getroot()


def payload_elements_genuine(ordinary: bytes, parties: Parties) -> bytes:
    """A payload of as many empty elements as the bounds allow, sealed by a trusted sender."""
    lim = DEFAULT_LIMITS
    fits = int(len(ordinary) / _SEAL_GROWTH) // len(b"<a></a>")  # its canonical form
    count = min(lim.max_elements, lim.max_markup // 2, fits) - 10
    payload = parse_xml(b"<r>" + b"<a/>" * count + b"</r>").getroot()
    return _pad_header(_seal(parties, payload).data, len(ordinary))


def payload_at_limits_genuine(ordinary: bytes, parties: Parties) -> bytes:
    return _seal(parties, _hostile_payload(int(len(ordinary) / _SEAL_GROWTH))).data


def payload_at_limits_forged(ordinary: bytes, parties: Parties) -> bytes:
    data = payload_at_limits_genuine(ordinary, parties)
    start = data.index(b"SignatureValue>") + len(b"SignatureValue>")
    flipped = b"A" if data[start : start + 1] != b"A" else b"B"
    return data[:start] + flipped + data[start + 1 :]


CASES: dict[str, Callable[[bytes, Parties], bytes]] = {
    "declarations on the Envelope (flood)": declarations_flood,
    "declarations on the Envelope (at the limit)": declarations_at_limit,
    "namespaced attributes on wsa:To, forged": namespaced_attributes_forged,
    "elements in an ignored header (flood)": elements_flood,
    "elements in an ignored header (at the limit)": elements_at_limit,
    "payload of empty elements, genuine signer": payload_elements_genuine,
    "payload at the limits, genuine signer": payload_at_limits_genuine,
    "payload at the limits, forged signature": payload_at_limits_forged,
}


@dataclass
class _Outcome:
    answer: str


def _attempt(parties: Parties, data: bytes) -> _Outcome:
    try:
        _open(parties, data)
    except GatewayError as exc:
        return _Outcome(exc.code)
    return _Outcome("opened")


def run(report: Report, quick: bool) -> None:
    parties = _parties()
    worst = {"attachments": (0.0, ""), "records": (0.0, "")}
    for size_kb in QUICK_SIZES_KB if quick else FULL_SIZES_KB:
        ordinary = _ordinary(parties, size_kb * 1024)
        records = _structured(parties, len(ordinary))
        crafted = {name: build(ordinary, parties) for name, build in CASES.items()}
        report.section(f"attacks: ordinary message {_size(len(ordinary))} against crafted ones")
        fns: dict[str, Callable[[], object]] = {
            "attachments": lambda ordinary=ordinary: _open(parties, ordinary),  # type: ignore[misc]
            "records": lambda records=records: _open(parties, records),  # type: ignore[misc]
        }
        for name, data in crafted.items():
            fns[name] = lambda data=data: _attempt(parties, data)  # type: ignore[misc]
        timings = interleaved_medians(fns, rounds=3 if quick else 5)
        base = {kind: timings.pop(kind) for kind in worst}
        for kind, message in (("attachments", ordinary), ("records", records)):
            report.line(
                f"ordinary, dossier of {kind} (opened)",
                f"{base[kind] * 1000:10.2f} ms",
                _size(len(message)),
            )
        for name, took in timings.items():
            ratios = {kind: took / base[kind] for kind in worst}
            answer = _attempt(parties, crafted[name]).answer
            verdict = "ok" if ratios["attachments"] <= TARGET_RATIO else "OVER"
            report.line(
                name,
                f"{took * 1000:10.2f} ms",
                f"{ratios['attachments']:5.2f}x / {ratios['records']:5.2f}x ordinary "
                f"(attachments / records), {_size(len(crafted[name]))}, {answer}, {verdict}",
            )
            for kind, ratio in ratios.items():
                if ratio > worst[kind][0]:
                    worst[kind] = (ratio, f"{name} at {_size(len(ordinary))}")
    report.section(f"attacks: summary (target: ≤ {TARGET_RATIO}x an ordinary message)")
    for kind, (ratio, where) in worst.items():
        report.line(f"worst-case-message ratio vs a dossier of {kind}", f"{ratio:.2f}x", where)
