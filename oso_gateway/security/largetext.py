"""Opening a large message without holding its ciphertext more than once.

A sealed dossier is almost all one text node: the base64 of the Body's ``xenc:CipherValue``
(about 90 MB for the largest dossier). Parsed as it is, that text is copied into the tree, and
read back out of the tree it is copied again into a Python string before it is decoded. Instead,
``cut_ciphertext`` cuts the middle of the longest run of base64 text out of the message and puts
a random token in its place; the envelope that is left (a few hundred kilobytes) goes through
the hardened parser, and the ciphertext is decoded straight from the message's bytes
(``decode_base64``).

The cut changes nothing the checks see, or it is not used:

* the run lies between a ``>`` and the next ``<`` and holds only base64 characters and XML
  white space: no markup and no reference is cut, so the envelope has exactly the message's
  markup (its elements, attributes and declarations); its first and last ``_KEEP`` bytes stay;
* the hardened parser's byte-level decisions are taken on the message's own counts
  (``xmlparse.count_markup`` of the message, handed to the envelope's parse): whatever the cut
  took out, the parser refuses or walks exactly as for the whole message;
* after the parse, the token must be in the text of an ``xenc:CipherValue`` in
  ``xenc:CipherData`` in ``xenc:EncryptedData`` in the envelope's ``soap:Body``, that text must
  be exactly the run with its middle cut, and the token must occur once in the envelope
  (``holder``; it is random, so no other text can hold it by chance or by design).

When any of this does not hold (a message shaped by hand, a comment in the wrong place), the
caller parses the whole message instead: slower and larger, but the same checks with the same
outcome. Pure: bytes in, values out.
"""

from __future__ import annotations

import binascii
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lxml import etree

from oso_gateway.errors import GatewayError
from oso_gateway.security.namespaces import SOAP, XENC, q

#: the base64 alphabet and the padding character
_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
#: white space that XML allows in text and base64 decoding skips
_XML_SPACE = b" \t\r\n"
#: white space that C14N writes back as it is (not the carriage return)
_TEXT_SPACE = b" \t\n"
#: bytes of base64 text decoded at a time (a multiple of 4)
_DECODE_CHUNK = 4 * 1024 * 1024


#: bytes of the run kept in place before and after the cut (the envelope's CipherValue text
#: starts and ends as the message's, padding included)
_KEEP = 1024
#: where the profile puts the Body's ciphertext, from the envelope's root
_CIPHER_VALUE_PATH = "/".join(
    (q(SOAP, "Body"), q(XENC, "EncryptedData"), q(XENC, "CipherData"), q(XENC, "CipherValue"))
)


@dataclass(frozen=True, kw_only=True)
class Cut:
    """The message with the middle of its longest base64 run replaced by ``token``."""

    envelope: bytes
    token: str
    #: the whole run in the original message
    run_start: int
    run_end: int
    #: the part of it that was cut out, [start, stop)
    start: int
    stop: int
    #: the run decoded, when it was strict base64 as it is (no white space): the decode that
    #: checked it, kept so that the ciphertext is not decoded twice (``decode_base64``)
    decoded: bytes | None = None

    def holder(self, root: etree._Element) -> etree._Element | None:
        """The Body's EncryptedData CipherValue whose whole text is the run, or None when the
        token is anywhere else or the text around it is not exactly the rest of the run.

        The token is random and occurs once in the envelope's bytes, so the one text that
        holds it is the one made of those bytes; no walk of every text node is needed.
        """
        if self.envelope.count(self.token.encode("ascii")) != 1:
            return None
        found = [
            cipher_value
            for cipher_value in root.iterfind(_CIPHER_VALUE_PATH)
            if cipher_value.text is not None and self.token in cipher_value.text
        ]
        if len(found) != 1:
            return None
        text = found[0].text
        assert text is not None
        return found[0] if self._is_run_text(text) else None

    def _is_run_text(self, text: str) -> bool:
        """Whether ``text`` is the text the parser makes of the run in the envelope: the run as
        it is when it holds no carriage return (it is ASCII, so its UTF-8 is itself), else with
        its line ends normalised."""
        end = self.run_end - (self.stop - self.start) + len(self.token)
        run = self.envelope[self.run_start : end]
        if b"\r" not in run:
            return text.encode("utf-8") == run
        normalised = run.decode("ascii").replace("\r\n", "\n").replace("\r", "\n")
        return text == normalised


def _long_gaps(data: bytes | bytearray, min_size: int) -> Iterator[tuple[int, int]]:
    """Each stretch from a ``<`` to the next ``<`` that is at least ``min_size`` bytes long, in
    order. A window of ``min_size`` bytes that holds a ``<`` is skipped to its last one (memrchr),
    so this costs about one search per ``min_size`` bytes, however many tags there are."""
    at = data.find(b"<")
    while at >= 0:
        last = data.rfind(b"<", at + 1, at + min_size)
        if last >= 0:
            at = last
            continue
        following = data.find(b"<", at + 1)
        if following < 0:
            return  # a run that no markup closes
        yield at, following
        at = following


def cut_ciphertext(data: bytes | bytearray, *, min_size: int) -> Cut | None:
    """Cut the middle out of the longest text run between markup if the run is at least
    ``min_size`` bytes of base64 (else None)."""
    gaps = list(_long_gaps(data, min_size)) if len(data) >= min_size else []
    if not gaps:
        return None
    best_start, best_end = max(gaps, key=lambda gap: gap[1] - gap[0])
    close = data.rfind(b">", best_start, best_end)
    if close < 0:
        return None
    run_start, run_end = close + 1, best_end
    if run_end - run_start < max(min_size, 4 * _KEEP):
        return None
    decoded = _strict_base64(data, run_start, run_end)
    if decoded is None and not _base64_text(memoryview(data)[run_start:run_end]):
        return None
    start, stop = run_start + _KEEP, run_end - _KEEP
    token = "OSOCUT" + secrets.token_hex(16)
    envelope = b"".join((data[:start], token.encode("ascii"), data[stop:]))
    return Cut(
        envelope=envelope,
        token=token,
        run_start=run_start,
        run_end=run_end,
        start=start,
        stop=stop,
        decoded=decoded,
    )


def _strict_base64(data: bytes | bytearray, start: int, end: int) -> bytes | None:
    """``data[start:end]`` decoded when it is strict base64 (which has only base64 characters:
    the check of the run and, on the usual path, the ciphertext's one decode); else None, and
    the run is checked and decoded as before (white space, or malformed: ``decode_base64``)."""
    with memoryview(data) as view, view[start:end] as run:
        try:
            return binascii.a2b_base64(run, strict_mode=True)
        except binascii.Error:
            return None


def _base64_text(run: memoryview, *, space: bytes = _XML_SPACE) -> bool:
    """Whether ``run`` holds only base64 characters and ``space`` (checked piecewise)."""
    with run:
        for at in range(0, len(run), _DECODE_CHUNK):
            if bytes(run[at : at + _DECODE_CHUNK]).translate(None, _BASE64 + space):
                return False
    return True


@dataclass(frozen=True, kw_only=True)
class CutTexts:
    """A document with its long base64 text runs replaced by tokens (``cut_texts``)."""

    document: bytes
    #: one token per run, in document order
    tokens: tuple[bytes, ...]
    #: the runs in the original document, [start, end)
    runs: tuple[tuple[int, int], ...]


def cut_texts(data: bytes, *, min_size: int, parsed: bool = False) -> CutTexts:
    """``data`` with every text run of at least ``min_size`` bytes that holds only base64
    characters, tabs, line feeds and spaces replaced by a token of its own.

    Such a run parses into text as it is, and exclusive C14N and lxml's serialiser write it back
    as it is (it has no reference, no carriage return and nothing to escape); so does the token.
    So what is checked or written for the small document holds for the whole one with the runs
    put back (``c14n.is_canonical``, ``serialise``).

    ``parsed``: the caller has parsed ``data`` whole with the hardened parser, so every byte of
    a run is a character XML allows where it stands. Then a run only has to hold nothing that
    C14N writes otherwise, no ``&`` and no carriage return (it has no ``<`` nor ``>`` by its
    bounds), and is found with two ``memchr`` instead of a pass of ``translate``: in a text, a
    comment or a processing instruction it and its token are then both written as they are.
    """
    if len(data) < min_size:  # no run that long fits: skip the walk from "<" to "<"
        return CutTexts(document=data, tokens=(), runs=())
    pieces: list[bytes] = []
    tokens: list[bytes] = []
    runs: list[tuple[int, int]] = []
    kept = 0  # data[:kept] is in pieces
    base = "OSOTEXT" + secrets.token_hex(16)
    for at, following in _long_gaps(data, min_size):
        close = data.rfind(b">", at, following)
        if close >= 0 and following - close - 1 >= min_size:
            if _plain_run(data, close + 1, following, parsed=parsed):
                # ended by "y": no token is the start of another ("x1" of "x10")
                token = f"{base}x{len(tokens)}y".encode("ascii")
                pieces += (data[kept : close + 1], token)
                tokens.append(token)
                runs.append((close + 1, following))
                kept = following
    if not tokens:
        return CutTexts(document=data, tokens=(), runs=())
    pieces.append(data[kept:])
    return CutTexts(document=b"".join(pieces), tokens=tuple(tokens), runs=tuple(runs))


def _plain_run(data: bytes, start: int, end: int, *, parsed: bool) -> bool:
    """Whether ``data[start:end]`` is written back by C14N as it is (``cut_texts``)."""
    if parsed:
        return data.find(b"&", start, end) < 0 and data.find(b"\r", start, end) < 0
    return _base64_text(memoryview(data)[start:end], space=_TEXT_SPACE)


@dataclass(frozen=True, kw_only=True)
class Serialised:
    """``etree.tostring(root, encoding="utf-8", xml_declaration=True)`` of a large document,
    known by its size before it is made (``serialise``)."""

    size: int
    _small: bytes
    _canonical: bytes
    _cut: CutTexts
    _positions: tuple[int, ...]

    def build(self) -> bytes:
        """The serialised document: the small one's bytes with the runs put back in place."""
        pieces: list[bytes | memoryview] = []
        at = 0
        with memoryview(self._canonical) as canonical:
            for token, where, (start, end) in zip(
                self._cut.tokens, self._positions, self._cut.runs, strict=True
            ):
                pieces += (self._small[at:where], canonical[start:end])
                at = where + len(token)
            pieces.append(self._small[at:])
            built = b"".join(pieces)
            pieces.clear()
        assert len(built) == self.size
        return built


def serialise(
    canonical: bytes, *, parse: Callable[[bytes], etree._Element], min_size: int
) -> Serialised | None:
    """lxml's serialisation (with the XML declaration) of the element whose exclusive C14N is
    ``canonical``, made without serialising the large tree: libxml2 holds about three times a
    large text node while it writes one. The long base64 runs are cut (``cut_texts``), the
    small document is parsed and serialised, and the runs go back in place of their tokens.
    None when there is nothing to cut or a token does not come out exactly once: then serialise
    the tree itself.
    """
    cut = cut_texts(canonical, min_size=min_size)
    if not cut.tokens:
        return None
    try:
        small = etree.tostring(parse(cut.document), encoding="utf-8", xml_declaration=True)
    except GatewayError:
        return None
    positions = []
    at = 0
    for token in cut.tokens:
        where = small.find(token, at)
        if where < 0 or small.count(token) != 1:
            return None
        positions.append(where)
        at = where + len(token)
    size = len(small) + sum(
        end - start - len(token) for token, (start, end) in zip(cut.tokens, cut.runs, strict=True)
    )
    return Serialised(
        size=size, _small=small, _canonical=canonical, _cut=cut, _positions=tuple(positions)
    )


def decode_base64(view: memoryview, *, chunk: int = _DECODE_CHUNK) -> bytes | bytearray:
    """Strict base64 with XML white space ignored, decoded into one buffer.

    The same result and the same failures as ``primitives.b64decode`` of the text, without a
    copy of the whole text. Like it, a strict decode of the text as it is comes first: a text
    without white space (as we and most stacks write it) is decoded in that one pass, straight
    from the view (removing white space that is not there cost a copy and a ``translate`` of the
    whole text, ~0.4x its decode). Otherwise the text is decoded in pieces of whole 4-character
    groups with its white space removed, always keeping the last whole group back, so that the
    final piece (which holds any padding, and everything after a padding character) is decoded
    as the end of the whole text would be. Raises ``ValueError`` when malformed.
    """
    if chunk <= 0 or chunk % 4:
        raise ValueError("the chunk must be a positive multiple of 4")
    try:
        return binascii.a2b_base64(view, strict_mode=True)
    except binascii.Error:
        pass  # white space (or malformed): piecewise, as below
    out = bytearray(len(view) // 4 * 3 + 3)
    filled = 0
    pending = b""  # compact text not decoded yet
    at = 0
    while at < len(view):
        pending += bytes(view[at : at + chunk]).translate(None, _XML_SPACE)
        at += chunk
        if at >= len(view) or b"=" in pending:
            break
        usable = max(0, (len(pending) - 4) // 4 * 4)
        if usable:
            filled = _decode_into(out, filled, pending[:usable])
            pending = pending[usable:]
    if at < len(view):  # padding before the last piece: decode the rest in one go
        pending += bytes(view[at:]).translate(None, _XML_SPACE)
    filled = _decode_into(out, filled, pending)
    del out[filled:]
    return out


def _decode_into(out: bytearray, filled: int, text: bytes) -> int:
    try:
        decoded = binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error as exc:
        raise ValueError("malformed base64") from exc
    out[filled : filled + len(decoded)] = decoded
    return filled + len(decoded)
