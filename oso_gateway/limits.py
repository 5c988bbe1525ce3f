"""Size limits, all derived from one fact: the largest dossier the gateway carries (plain data).

The largest allowed dossier has **50 MiB of attachments** (decoded, ``MAX_ATTACHMENTS_BYTES``).
Every other size bound follows from it, so that raising it moves them all together:

* a dossier carries its attachments as base64 (4/3 of their size, possibly line-wrapped), plus
  everything else it holds (``DOSSIER_MARKUP_ALLOWANCE``): ``MAX_DOSSIER_BYTES``, the bound on a
  dossier file, a parsed dossier and a stored one (about 76 MiB);
* the sealed message carries the dossier's canonical form encrypted (IV + ciphertext + tag) and
  base64-encoded in one CipherValue, plus the SOAP envelope and its security header
  (``ENVELOPE_ALLOWANCE``): ``MAX_MESSAGE_BYTES``, the bound on a message we open and the default
  HTTP request limit (``[limits] max_request_bytes``; about 102 MiB).

``docs/operations.md`` ("Large dossiers") states the resulting numbers.
"""

from __future__ import annotations

from typing import Final

KiB: Final = 1024
MiB: Final = 1024 * KiB


def base64_size(n: int, *, line_length: int | None = None, line_break: int = 2) -> int:
    """Bytes of the base64 text of ``n`` bytes (wrapped every ``line_length`` characters)."""
    encoded = 4 * ((n + 2) // 3)
    if line_length:
        encoded += line_break * ((encoded + line_length - 1) // line_length)
    return encoded


#: The largest allowed total of a dossier's attachments, decoded.
MAX_ATTACHMENTS_BYTES: Final = 50 * MiB
#: Everything a dossier holds besides its attachments' base64 (a full dossier is ~60 KB of it).
DOSSIER_MARKUP_ALLOWANCE: Final = 8 * MiB
#: The largest dossier document: attachments as base64 wrapped at 76 (CRLF, the worst case).
MAX_DOSSIER_BYTES: Final = (
    base64_size(MAX_ATTACHMENTS_BYTES, line_length=76) + DOSSIER_MARKUP_ALLOWANCE
)
#: AES-256-GCM adds a 12-byte IV and a 16-byte tag to the encrypted content.
_GCM_OVERHEAD: Final = 12 + 16
#: The SOAP envelope around the CipherValue: addressing, security header, certificate, signature.
ENVELOPE_ALLOWANCE: Final = 256 * KiB
#: The largest sealed message (and the default HTTP request body limit).
MAX_MESSAGE_BYTES: Final = base64_size(MAX_DOSSIER_BYTES + _GCM_OVERHEAD) + ENVELOPE_ALLOWANCE
