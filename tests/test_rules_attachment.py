"""Attachment checks (GW.DOC01-03) read piece by piece: the same verdicts as decoding whole.

``scan_base64`` checks an attachment's base64 a piece at a time and ``zipfile`` reads the ZIP's
end through a seekable view that decodes only what it reads. Each case is compared with the
whole-text decoding the rules used before (the reference below), with pieces small enough that
every boundary falls somewhere interesting.
"""

from __future__ import annotations

import base64
import binascii
import io
import random
import zipfile
from datetime import UTC, datetime

import pytest
from dossier_samples import build_dossier, find

from oso_gateway.dossier.rules import attachment, check_rules
from oso_gateway.dossier.rules.attachment import scan_base64

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CONTENT = "huidigeschool/leerling/overigdocumentlijst/document/bestandsinhoud"
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def _reference_decode(text: str) -> bytes | None:
    """Whole-text decoding: strict base64 once the whitespace is removed."""
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _reference_zip_readable(raw: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        return False
    return True


def _zip_readable(text: str, piece_chars: int) -> bool:
    content = scan_base64(text, piece_chars)
    assert content is not None
    try:
        with zipfile.ZipFile(content.open()) as archive:
            archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        return False
    return True


def _zip(rnd: random.Random, members: int, comment: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(members):
            archive.writestr(f"deel{i}.pdf", rnd.randbytes(rnd.randint(0, 300)))
        archive.comment = comment
    return buf.getvalue()


def _wrapped(text: str, width: int = 76) -> str:
    return "\n".join(text[i : i + width] for i in range(0, len(text), width))


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_ODD = ["=", "==", "=====", " ", "\n", "\r\n", "\t", "\xa0", "\u2028", "*", "é", "-", "\x85"]


def _mutated(rnd: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rnd.randint(0, 3)):
        pos = rnd.randint(0, len(chars))
        roll = rnd.random()
        if roll < 0.5:
            chars.insert(pos, rnd.choice(_ODD))
        elif roll < 0.7 and chars:
            del chars[min(pos, len(chars) - 1)]
        else:
            chars.insert(pos, rnd.choice(_ALPHABET))
    return "".join(chars)


def test_base64_verdicts_and_bytes_match_whole_decoding_at_every_piece_size() -> None:
    rnd = random.Random(14)
    valid = invalid = 0
    for _ in range(4000):
        text = base64.b64encode(rnd.randbytes(rnd.randint(0, 40))).decode()
        if rnd.random() < 0.3:
            text = _wrapped(text, rnd.choice([3, 4, 5, 76])) + rnd.choice(["", "\n", " "])
        if rnd.random() < 0.8:
            text = _mutated(rnd, text)
        expected = _reference_decode(text)
        for piece_chars in (4, 8, 12, 64):
            content = scan_base64(text, piece_chars)
            if expected is None:
                assert content is None, (text, piece_chars)
                continue
            assert content is not None, (text, piece_chars)
            assert content.size == len(expected)
            assert content.read_at(0, content.size) == expected
            start = rnd.randint(0, content.size)
            assert content.read_at(start, 5) == expected[start : start + 5]
        valid += expected is not None
        invalid += expected is None
    assert valid > 500 and invalid > 500  # both kinds were really compared


@pytest.mark.parametrize(
    "text",
    [
        "QUJD" + "*" + "QUJD",  # a character outside the alphabet right at a piece boundary
        "QUJDQUJD\u00e9QUJD",  # a non-ASCII character at a boundary
        "QQ==QUJD",  # padding in the middle, ending a piece
        "QUJDQQ==QUJDQUJD",  # padding in the middle, a piece later
        "QUJDQ===",  # too much padding
        "QUJDQUJDQ",  # one character too many
        "QUJDQUJDQQ",  # no padding
        "QUJD QUJD QQ=",  # too little padding after whitespace
        "QUJD=QUJD",  # data after padding that starts a piece
        "=QUJD",  # leading padding
    ],
)
def test_invalid_base64_at_piece_boundaries_is_refused(text: str) -> None:
    assert _reference_decode(text) is None
    for piece_chars in (4, 8):
        assert scan_base64(text, piece_chars) is None


@pytest.mark.parametrize("text", ["QUJD", "QUJDQQ==", "QUJDQUI=", "QUJD\nQUJD\n", " QU JD QQ= = "])
def test_valid_base64_split_anywhere_decodes_as_whole(text: str) -> None:
    expected = _reference_decode(text)
    assert expected is not None
    for piece_chars in (4, 8, 12):
        content = scan_base64(text, piece_chars)
        assert content is not None
        assert content.read_at(0, content.size) == expected


@pytest.mark.parametrize("text", ["QUJD=", "QUJD=\n=", "QUJDQQ===", "QUJD" * 3 + "=" * 9])
def test_padding_after_a_whole_quad_is_judged_as_the_whole_text_is(text: str) -> None:
    """Python's strict decoder has accepted "=" after a complete quad (3.11); whichever way this
    Python judges it, a piece boundary before the "=" does not change the verdict."""
    expected = _reference_decode(text)
    for piece_chars in (4, 8, 12):
        content = scan_base64(text, piece_chars)
        assert (None if content is None else content.read_at(0, content.size)) == expected


def test_zip_verdicts_match_whole_decoding() -> None:
    rnd = random.Random(3)
    cases = [b"PK\x05\x06" + bytes(18), b"PK\x05\x06", b"PK\x03\x04" + bytes(60), b""]
    for members in (0, 1, 3):
        for comment in (b"", b"opmerking", b"PK\x05\x06" * 4):
            whole = _zip(rnd, members, comment)
            cases.append(whole)
            cases.append(whole[: rnd.randint(0, len(whole) - 1)])  # truncated
            broken = bytearray(whole)
            broken[len(whole) - len(comment) - rnd.randint(1, 22)] ^= 0xFF  # the end record
            cases.append(bytes(broken))
            cases.append(whole + bytes(rnd.randint(1, 40)))  # trailing bytes
            cases.append(bytes(rnd.randint(1, 40)) + whole)  # leading bytes
    readable = 0
    for raw in cases:
        text = base64.b64encode(raw).decode()
        expected = _reference_zip_readable(raw)
        readable += expected
        for piece_chars in (4, 16, 100, attachment.PIECE_CHARS):
            for variant in (text, _wrapped(text)):
                content = scan_base64(variant, piece_chars)
                assert content is not None
                assert content.read_at(0, 4).startswith(ZIP_MAGIC) == raw.startswith(ZIP_MAGIC)
                assert _zip_readable(variant, piece_chars) == expected, (raw, piece_chars)
    assert 0 < readable < len(cases)


def test_the_view_seeks_and_reads_as_bytesio() -> None:
    raw = bytes(range(256)) * 3
    content = scan_base64(_wrapped(base64.b64encode(raw).decode()), 8)
    assert content is not None
    view, reference = content.open(), io.BytesIO(raw)
    for offset, whence, count in [(0, 2, 5), (-22, 2, 30), (-5000, 2, 3), (10, 0, -1), (7, 1, 9)]:
        assert view.seek(offset, whence) == reference.seek(offset, whence)
        assert view.read(count) == reference.read(count)
        assert view.tell() == reference.tell()
    assert view.seek(5000) == reference.seek(5000)
    assert view.read(4) == reference.read(4) == b""
    with pytest.raises(ValueError):
        view.seek(-1)


def _rule_codes(text: str) -> set[str]:
    root = build_dossier()
    find(root, CONTENT).text = text
    return {f.code for f in check_rules(root, now=NOW)}


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attachment, "PIECE_CHARS", 64)


def _zip_text(rnd: random.Random) -> str:
    return base64.b64encode(_zip(rnd, 3)).decode()


def test_rules_in_small_pieces_refuse_base64_faults_with_doc01(small_pieces: None) -> None:
    text = _zip_text(random.Random(1))
    assert _rule_codes(text) == set()
    assert _rule_codes(text[:64] + "*" + text[64:]) == {"GW.DOC01"}  # at a piece boundary
    assert _rule_codes(text[:128] + "==" + text[128:]) == {"GW.DOC01"}  # padding in the middle
    assert _rule_codes(text[:-4] + text[-3:]) == {"GW.DOC01"}  # a character short


def test_rules_in_small_pieces_refuse_zip_faults_as_before(small_pieces: None) -> None:
    raw = _zip(random.Random(2), 3)
    truncated = base64.b64encode(raw[: len(raw) - 30]).decode()
    end_broken = bytearray(raw)
    end_broken[-22 + 12] ^= 0xFF  # the end record's directory size: its signature stays
    assert not _reference_zip_readable(bytes(end_broken))
    not_zip = base64.b64encode(b"%PDF-1.4" + raw).decode()
    assert _rule_codes(truncated) == {"GW.DOC03"}
    assert _rule_codes(_wrapped(base64.b64encode(bytes(end_broken)).decode())) == {"GW.DOC03"}
    assert _rule_codes(not_zip) == {"GW.DOC02"}


def test_a_large_attachment_in_many_pieces_is_accepted() -> None:
    rnd = random.Random(5)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for i in range(4):
            archive.writestr(f"scan{i}.pdf", rnd.randbytes(1024 * 1024))
    text = base64.b64encode(buf.getvalue()).decode()
    assert len(text) > 5 * attachment.PIECE_CHARS
    assert _rule_codes(text) == set()
    assert _rule_codes(_wrapped(text)) == set()
    truncated = base64.b64encode(buf.getvalue()[:-1]).decode()
    assert _rule_codes(truncated) == {"GW.DOC03"}
