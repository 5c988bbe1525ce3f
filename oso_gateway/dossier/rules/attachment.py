"""An attachment's base64 text, checked and read piece by piece (no full-size decoded copy).

An attachment (``bestandsinhoud``) is up to ~70 MB of base64. ``scan_base64`` checks it as
``binascii.a2b_base64(strict_mode=True)`` would check the text with its whitespace removed, one
piece at a time, and keeps where each piece starts;
``Base64Bytes.open()`` then reads the decoded bytes at any offset (for ``zipfile``, which reads
only the end record and the central directory), decoding just the pieces it reads.
"""

from __future__ import annotations

import binascii
from bisect import bisect_right
from typing import NamedTuple

#: characters taken from the text at a time (a multiple of 4: without whitespace a piece is
#: exactly one slice); a read decodes at most this much besides what it returns
PIECE_CHARS = 1024 * 1024


class _Piece(NamedTuple):
    start: int  # where its characters begin in the text
    end: int  # where they end
    head: str  # the characters carried over from the previous piece (whitespace removed: < 4)
    length: int  # its length without whitespace, carry included (the rest is the next's head)
    offset: int  # where its bytes begin in the decoded content
    fixed: bytes | None = None  # the bytes of the padded end (kept: at most 2)


def _without_space(text: str) -> str:
    return "".join(text.split())


def _piece_text(text: str, piece: _Piece, space: bool) -> str:
    chunk = text[piece.start : piece.end]
    if space:
        chunk = _without_space(chunk)
    if piece.head:
        chunk = piece.head + chunk
    return chunk[: piece.length] if len(chunk) != piece.length else chunk


class Base64Bytes:
    """The decoded content of a valid base64 text, without holding it (see ``scan_base64``)."""

    def __init__(
        self, text: str, pieces: list[_Piece], size: int, space: bool, first: bytes = b""
    ) -> None:
        self._text = text
        self._pieces = pieces
        self._offsets = [p.offset for p in pieces]
        self._space = space
        # the piece read last (zipfile reads the end in a few small reads); at first the first
        # piece, as checking decoded it (the ZIP header; all of a small attachment)
        self._last = (0 if first else -1, first)
        self.size = size

    def piece(self, index: int) -> bytes:
        """The decoded bytes of piece ``index``."""
        piece = self._pieces[index]
        if piece.fixed is not None:
            return piece.fixed
        if self._last[0] != index:
            text = _piece_text(self._text, piece, self._space)
            self._last = (index, binascii.a2b_base64(text))
        return self._last[1]

    def read_at(self, offset: int, count: int) -> bytes:
        """Up to ``count`` decoded bytes from ``offset`` (fewer at the end)."""
        end = min(offset + count, self.size)
        if offset >= end:
            return b""
        index = bisect_right(self._offsets, offset) - 1
        out = bytearray()
        while len(out) < end - offset:
            piece = self._pieces[index]
            data = self.piece(index)
            skip = offset + len(out) - piece.offset
            out += data[skip : skip + end - offset - len(out)]
            index += 1
        return bytes(out)

    def open(self) -> Base64Reader:
        """A read-only seekable file over the decoded bytes (seek and read as ``io.BytesIO``)."""
        return Base64Reader(self)


class Base64Reader:
    """``io.BytesIO``'s read, seek and tell over a ``Base64Bytes``, decoding only what is read."""

    def __init__(self, content: Base64Bytes) -> None:
        self._content = content
        self._pos = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            if offset < 0:
                raise ValueError(f"negative seek value {offset}")
            pos = offset
        elif whence == 1:
            pos = self._pos + offset
        elif whence == 2:
            pos = self._content.size + offset
        else:
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        self._pos = max(pos, 0)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        count = self._content.size - self._pos if size is None or size < 0 else size
        data = self._content.read_at(self._pos, count)
        self._pos += len(data)
        return data


def _strict_bytes(piece: str) -> bytes | None:
    try:
        return binascii.a2b_base64(piece, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def scan_base64(text: str, piece_chars: int | None = None) -> Base64Bytes | None:
    """The decoded content of ``text`` if ``binascii.a2b_base64(strict_mode=True)`` accepts it
    once its whitespace is removed, else None; checked and decoded
    ``piece_chars`` (default ``PIECE_CHARS``, a multiple of 4) at a time, keeping no decoded
    bytes."""
    piece_chars = PIECE_CHARS if piece_chars is None else piece_chars
    if piece_chars <= 0 or piece_chars % 4:
        raise ValueError("piece_chars must be a positive multiple of 4")
    pieces: list[_Piece] = []
    head, offset, space, first = "", 0, False, b""
    for start in range(0, len(text), piece_chars):
        end = min(start + piece_chars, len(text))
        chunk = text[start:end]
        decoded = None if space else _strict_bytes(chunk)
        length = len(chunk)
        # Strict decoding of a piece judges it as in the whole text (it starts at a quad boundary)
        # unless its padding may continue in the next piece or it starts with padding.
        if decoded is None or (
            chunk.endswith("=") and (end != len(text) or (start and chunk.startswith("=")))
        ):
            space = True  # whitespace, padding or not base64: from here on whitespace is removed
            chunk = head + _without_space(chunk)
            pad = chunk.find("=")
            if pad >= 0:
                piece = _Piece(start, end, head, pad, offset)
                return _padded_end(text, pieces, piece, chunk, piece_chars)
            length = len(chunk) if end == len(text) else len(chunk) - len(chunk) % 4
            decoded = _strict_bytes(chunk[:length])
            if decoded is None:
                return None
        pieces.append(_Piece(start, end, head, length, offset))
        head = chunk[length:]
        offset += len(decoded)
        first = first if start else decoded
    return Base64Bytes(text, pieces, offset, space, first)


def _padded_end(
    text: str, pieces: list[_Piece], piece: _Piece, chunk: str, piece_chars: int
) -> Base64Bytes | None:
    """``scan_base64`` from the first "=" (at ``piece.length`` in ``chunk``): only "=" (and
    whitespace) may follow it; the data before it and the padding are checked as
    ``a2b_base64(strict_mode=True)`` checks them at that point of the whole text."""
    pads = len(chunk) - piece.length
    if chunk.count("=", piece.length) != pads:
        return None  # data after the padding
    for start in range(piece.end, len(text), piece_chars):
        rest = _without_space(text[start : start + piece_chars])
        if rest.count("=") != len(rest):
            return None
        pads += len(rest)
    data = chunk[: piece.length]
    body = len(data) - len(data) % 4
    decoded = _strict_bytes(data[:body])
    if decoded is None:
        return None
    if body:
        pieces.append(piece._replace(length=body))
    offset = piece.offset + len(decoded)
    # The strict decoder's state at a quad boundary after data: that of a whole quad before it.
    # Past four "=" the state no longer changes (it has ended or fails), so more count as four.
    before = "QUJD" if offset else ""
    end = _strict_bytes(before + data[body:] + "=" * min(pads, 4))
    if end is None:
        return None
    end = end[3:] if before else end
    pieces.append(_Piece(0, 0, "", 0, offset, end))
    return Base64Bytes(text, pieces, offset + len(end), True)
