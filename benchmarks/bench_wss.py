"""WS-Security seal / open against the floor of their primitives, measured in the same run.

For generated dossiers of 30 KB, 2 MB and 50 MB (``--quick``: 30 KB and 2 MB) this reports the
median time of ``seal`` and of ``open_message`` next to the sum of the primitive operations each one
cannot avoid, and the ratio. Targets: open ≤ 1.3× its floor at every size (issue 14), seal ≤ 1.5×.
Peak memory of seal and of open on the largest dossier is measured in a fresh child process (peak
RSS during the call − RSS before it, relative to the message size; target < 4×).

Seal floor: exclusive C14N + SHA-256 of the Body content and of the small signed headers, the
SHA-256 of the payload's C14N that the API returns (``payload_digest``, a second pass over the same
bytes), one RSA-3072 PKCS#1 v1.5 SHA-256 signature, AES-256-GCM encryption of the C14N body,
RSA-OAEP wrap of the 32-byte key, base64 of the ciphertext, serialisation of the envelope (with the
base64 spliced in as bytes, the cheapest way; a plain ``etree.tostring`` is shown for reference).
Open floor: lxml parse of the message, base64 decode, RSA-OAEP unwrap, AES-256-GCM decryption,
lxml parse of the decrypted body, C14N + SHA-256 of the Body content and the headers, the
``payload_digest`` SHA-256, one RSA verification. The signer's certificate path and CRL checks are
shown for reference but are not in the floor (they cost the same for every message size, and a
path already verified within its validity window is served from the trust config's cache).
What the floor leaves out, and the 1.3× must cover, is the checking only open does: the hardened
parser's markup scans and shape limits on both documents, the envelope's structure, the signature's
references and the ID index, the certificate from the token and the timestamp.
From 1 MiB on (a message whose CipherValue ``largetext.cut_ciphertext`` cuts, as open does), open
parses the envelope with the CipherValue cut out and checks that the plaintext is canonical on a
copy with its long text runs cut out (``c14n.is_canonical``): it no longer parses the whole
message nor canonicalises the whole payload, so those two are not in its floor there either. The
large floor is the least any open needs: an lxml parse of the envelope's markup (the message with
the CipherValue text left out: the ciphertext is read by the base64 decode, which stays), and the
SHA-256 of the Body content's canonical form for its reference digest (the plaintext is that
form; no C14N of it) besides the ``payload_digest`` SHA-256; the rest as above. So the ratio at 2
MB and 50 MB counts open's own canonical-form check and markup scans of the large plaintext as
overhead, as the 1.3x must cover (before this floor, the full parse and C14N it no longer does
made those ratios read below 1x). Numbers as measured: docs/architecture.md ("Opening a message").
"""

from __future__ import annotations

import binascii
import copy
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from lxml import etree

from benchmarks.__main__ import Report, median_time
from oso_gateway.dossier.generator import generate_dossier_of_size
from oso_gateway.security import largetext, wss
from oso_gateway.security.keys import load_certificate, load_certificates, load_private_key
from oso_gateway.security.trust import TrustConfig, verify_certificate
from oso_gateway.security.wss import Identity, OpenedMessage, SealedMessage, open_message, seal
from oso_gateway.security.xmlparse import parse_xml

REPO = Path(__file__).resolve().parent.parent
DEV_PKI = REPO / "certs" / "dev"
SENDER_OIN = "00000001000000000001"
RECIPIENT_OIN = "00000001000000000002"
NOW = datetime.now(UTC)  # the dev PKI is valid around now, not at a fixed date
#: the most each may cost, as a multiple of its floor
TARGET_RATIO = {"seal": 1.5, "open": 1.3}
TARGET_MEMORY = 4.0

FULL_SIZES_KB = (30, 2 * 1024, 50 * 1024)
QUICK_SIZES_KB = (30, 2 * 1024)

WSU_ID = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}Id"
DS_SIGNED_INFO = "{http://www.w3.org/2000/09/xmldsig#}SignedInfo"
XENC_ENCRYPTED_DATA = "{http://www.w3.org/2001/04/xmlenc#}EncryptedData"
XENC_CIPHER_VALUE = "{http://www.w3.org/2001/04/xmlenc#}CipherValue"
_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True, collect_ids=False
)


# ---------------------------------------------------------------------------------------------
# Fixtures: the dev PKI and generated dossiers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parties:
    sender: Identity
    recipient: Identity
    trust: TrustConfig


def _read(name: str) -> bytes:
    return (DEV_PKI / name).read_bytes()


def _identity(oin: str) -> Identity:
    return Identity(
        oin=oin,
        private_key=load_private_key(_read(f"gateway-{oin}.key.pem")),
        certificate=load_certificate(_read(f"gateway-{oin}.crt.pem")),
        chain=tuple(load_certificates(_read("issuing-ca.crt.pem"))),
    )


def _parties() -> Parties:
    trust = TrustConfig.from_pem(
        anchors=[_read("root-ca.crt.pem")],
        intermediates=[_read("issuing-ca.crt.pem")],
        crls=[_read("root-ca.crl.pem"), _read("issuing-ca.crl.pem")],
    )
    return Parties(sender=_identity(SENDER_OIN), recipient=_identity(RECIPIENT_OIN), trust=trust)


def _dossier(size_kb: int) -> bytes:
    """A generated dossier of about ``size_kb`` KiB (attachments make up the bulk)."""
    return generate_dossier_of_size(size_kb * 1024, seed=7, now=NOW)


def _seal(parties: Parties, payload: etree._Element) -> SealedMessage:
    return seal(
        payload,
        sender=parties.sender,
        recipient_certificate=parties.recipient.certificate,
        to="https://gateway-2.example/oso",
        action="urn:oso:dossier:deliver",
        message_id="urn:uuid:00000000-0000-4000-8000-000000000001",
        now=NOW,
    )


def _open(parties: Parties, data: bytes) -> OpenedMessage:
    return open_message(data, identities=[parties.recipient], trust=parties.trust, now=NOW)


# ---------------------------------------------------------------------------------------------
# The floor
# ---------------------------------------------------------------------------------------------


def _c14n_sha256(element: etree._Element) -> bytes:
    return hashlib.sha256(etree.tostring(element, method="c14n", exclusive=True)).digest()


C14N_BODY = "exc-C14N + SHA-256 of the Body content"
C14N_HEADERS = "exc-C14N + SHA-256 of headers + SignedInfo"
PAYLOAD_DIGEST = "SHA-256 of the payload C14N (payload_digest)"
SIGN = "RSA-3072 PKCS#1 v1.5 SHA-256 sign"
VERIFY = "RSA-3072 PKCS#1 v1.5 SHA-256 verify"
ENCRYPT = "AES-256-GCM encrypt (the C14N body)"
DECRYPT = "AES-256-GCM decrypt"
WRAP = "RSA-OAEP wrap (32-byte key)"
UNWRAP = "RSA-OAEP unwrap"
B64_ENCODE = "base64 encode of the ciphertext"
B64_DECODE = "base64 decode of the ciphertext"
SERIALISE = "serialise envelope, splice in ciphertext"
SERIALISE_FULL = "(for reference) etree.tostring, whole tree"
PARSE_MESSAGE = "lxml parse of the message"
PARSE_BODY = "lxml parse of the decrypted body"
PARSE_ENVELOPE = "lxml parse of the envelope markup (no CipherValue text)"
SHA_BODY = "SHA-256 of the Body content's canonical form"
CERT_PATH = "(for reference) signer path + CRL checks"

SEAL_FLOOR = (C14N_BODY, PAYLOAD_DIGEST, C14N_HEADERS, SIGN, ENCRYPT, WRAP, B64_ENCODE, SERIALISE)
OPEN_FLOOR = (
    PARSE_MESSAGE,
    B64_DECODE,
    UNWRAP,
    DECRYPT,
    PARSE_BODY,
    C14N_BODY,
    PAYLOAD_DIGEST,
    C14N_HEADERS,
    VERIFY,
)
#: the open floor of a message whose CipherValue is cut out before the parse (from 1 MiB)
OPEN_FLOOR_CUT = (
    PARSE_ENVELOPE,
    B64_DECODE,
    UNWRAP,
    DECRYPT,
    PARSE_BODY,
    SHA_BODY,
    PAYLOAD_DIGEST,
    C14N_HEADERS,
    VERIFY,
)


def open_floor(message: bytes) -> tuple[str, ...]:
    """The primitives of the floor of opening ``message``: with the cut floor when open cuts."""
    cut = largetext.cut_ciphertext(message, min_size=wss._CUT_MIN)
    return OPEN_FLOOR if cut is None else OPEN_FLOOR_CUT


def primitives(
    payload: etree._Element, message: bytes, parties: Parties
) -> dict[str, Callable[[], object]]:
    """Each primitive operation of seal and open as a zero-argument callable, by name."""
    sender_key = parties.sender.private_key
    recipient_key = parties.recipient.private_key
    envelope = etree.fromstring(message, _PARSER)
    # The cheapest serialisation: the envelope with a placeholder CipherValue, then the base64
    # bytes joined in (libxml2 escapes a large text node at a few hundred MB/s only).
    skeleton = copy.deepcopy(envelope)
    cipher_value = next(next(skeleton.iter(XENC_ENCRYPTED_DATA)).iter(XENC_CIPHER_VALUE))
    cipher_value.text = ""
    markup = etree.tostring(skeleton, encoding="UTF-8")  # the envelope without the ciphertext
    cipher_value.text = "@"

    def serialise() -> bytes:
        head, tail = etree.tostring(skeleton, encoding="UTF-8").split(b"@", 1)
        return b"".join((head, ciphertext_b64, tail))

    signed_headers = [
        el
        for el in envelope.iter()
        if isinstance(el.tag, str) and el.get(WSU_ID) is not None and not el.tag.endswith("}Body")
    ]
    signed_info = next(envelope.iter(DS_SIGNED_INFO))
    signed_info_bytes = etree.tostring(signed_info, method="c14n", exclusive=True)
    body = etree.tostring(payload, method="c14n", exclusive=True)
    key, iv = os.urandom(32), os.urandom(12)
    ciphertext = AESGCM(key).encrypt(iv, body, None)
    ciphertext_b64 = binascii.b2a_base64(iv + ciphertext, newline=False)
    signature = sender_key.sign(signed_info_bytes, padding.PKCS1v15(), hashes.SHA256())
    sender_public = sender_key.public_key()
    recipient_public = parties.recipient.certificate.public_key()
    assert isinstance(recipient_public, rsa.RSAPublicKey)
    wrapped = recipient_public.encrypt(key, _OAEP)

    return {
        C14N_BODY: lambda: _c14n_sha256(payload),
        PAYLOAD_DIGEST: lambda: hashlib.sha256(body).digest(),
        C14N_HEADERS: lambda: [_c14n_sha256(el) for el in [*signed_headers, signed_info]],
        SIGN: lambda: sender_key.sign(signed_info_bytes, padding.PKCS1v15(), hashes.SHA256()),
        VERIFY: lambda: sender_public.verify(
            signature, signed_info_bytes, padding.PKCS1v15(), hashes.SHA256()
        ),
        ENCRYPT: lambda: AESGCM(key).encrypt(iv, body, None),
        DECRYPT: lambda: AESGCM(key).decrypt(iv, ciphertext, None),
        WRAP: lambda: recipient_public.encrypt(key, _OAEP),
        UNWRAP: lambda: recipient_key.decrypt(wrapped, _OAEP),
        B64_ENCODE: lambda: binascii.b2a_base64(iv + ciphertext, newline=False),
        B64_DECODE: lambda: binascii.a2b_base64(ciphertext_b64, strict_mode=True),
        SERIALISE: serialise,
        SERIALISE_FULL: lambda: etree.tostring(envelope, encoding="UTF-8"),
        PARSE_MESSAGE: lambda: etree.fromstring(message, _PARSER),
        PARSE_BODY: lambda: etree.fromstring(body, _PARSER),
        PARSE_ENVELOPE: lambda: etree.fromstring(markup, _PARSER),
        SHA_BODY: lambda: hashlib.sha256(body).digest(),
        CERT_PATH: lambda: verify_certificate(
            parties.sender.certificate, trust=parties.trust, now=NOW, purpose="signing"
        ),
    }


# ---------------------------------------------------------------------------------------------
# Peak memory, in a fresh child process
# ---------------------------------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _baseline_bytes() -> int:
    """Reset this process's peak RSS to its current RSS and return that (Linux /proc).

    ``ru_maxrss`` alone is not enough: Linux carries the parent's high-water mark over fork and
    exec, so a child started by a big benchmark process would report the parent's peak.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS (VmHWM)
    except OSError:
        pass
    rss = _status_kib("VmRSS")
    if rss is None:  # no /proc: ru_maxrss (KiB on Linux)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return rss * 1024


def _peak_bytes() -> int:
    hwm = _status_kib("VmHWM")
    if hwm is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return hwm * 1024


def _child(mode: str, path: str) -> dict[str, int]:
    """Run in the child: set up, reset the peak RSS, seal or open once, read the peak."""
    parties = _parties()
    data = Path(path).read_bytes()
    if mode == "seal":
        payload = parse_xml(data).getroot()
        before = _baseline_bytes()
        sealed = _seal(parties, payload)
        after = _peak_bytes()
        size = len(sealed.data)
    else:
        before = _baseline_bytes()
        opened = _open(parties, data)
        after = _peak_bytes()
        assert opened.payload is not None
        size = len(data)
    return {"delta": after - before, "message_bytes": size}


def peak_memory(mode: str, path: Path) -> dict[str, int]:
    """(peak − baseline) of one seal or open in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_wss", "--child", mode, str(path)],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------


def _fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:10.2f} ms"


def _size(n: int) -> str:
    return f"{n / 1024:.0f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


def run(report: Report, quick: bool) -> None:
    parties = _parties()
    sizes = QUICK_SIZES_KB if quick else FULL_SIZES_KB
    summary: list[str] = []
    for size_kb in sizes:
        dossier = _dossier(size_kb)
        summary.append(_bench_one(report, parties, dossier, quick=quick))
        if not quick and size_kb == sizes[-1]:
            summary.extend(_memory(report, parties, dossier))
    if quick:
        summary.append("memory: measured in the full run only (50 MB; small sizes are noise)")
    report.section(
        f"wss: summary (targets: open ≤ {TARGET_RATIO['open']}x floor, seal ≤ "
        f"{TARGET_RATIO['seal']}x, peak memory < {TARGET_MEMORY}x message)"
    )
    for text in summary:
        report.line(text, "")


def interleaved_samples(
    fns: dict[str, Callable[[], object]], *, rounds: int
) -> dict[str, list[float]]:
    """Time per call of each function, one sample per round, sampled round-robin.

    One sample of every function per round: on a shared machine, load from other processes then
    hits the primitives and seal/open alike instead of skewing their ratio.
    """
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name].append(median_time(fn, repeat=1))
    return samples


def interleaved_medians(fns: dict[str, Callable[[], object]], *, rounds: int) -> dict[str, float]:
    """Median time per call of each function, sampled round-robin (``interleaved_samples``)."""
    samples = interleaved_samples(fns, rounds=rounds)
    return {name: statistics.median(values) for name, values in samples.items()}


def _round_ratios(samples: dict[str, list[float]], op: str, floor: tuple[str, ...]) -> str:
    """The ratio of ``op`` to its floor in each round alone, lowest and highest: how much the
    machine's load moved it during the run."""
    ratios = [
        samples[op][i] / sum(samples[name][i] for name in floor) for i in range(len(samples[op]))
    ]
    return f"rounds {min(ratios):.2f}-{max(ratios):.2f}x"


def _bench_one(report: Report, parties: Parties, dossier: bytes, *, quick: bool) -> str:
    """Time the primitives, seal and open for one dossier; return the summary line."""
    payload = parse_xml(dossier).getroot()
    sealed = _seal(parties, payload)
    opened = _open(parties, sealed.data)
    assert opened.payload_digest == sealed.payload_digest
    rounds = 3 if len(sealed.data) > 8 * 1024 * 1024 else 5 if quick else 9
    report.section(f"wss: dossier {_size(len(dossier))}, sealed message {_size(len(sealed.data))}")
    ops = primitives(payload, sealed.data, parties)
    samples = interleaved_samples(
        {
            **ops,
            "seal": lambda: _seal(parties, payload),
            "open": lambda: _open(parties, sealed.data),
        },
        rounds=rounds,
    )
    timings = {name: statistics.median(values) for name, values in samples.items()}
    took = {op: timings.pop(op) for op in ("seal", "open")}
    costs = timings
    floors = {"seal": SEAL_FLOOR, "open": open_floor(sealed.data)}
    for name, t in costs.items():
        used = " + ".join(op for op, names in floors.items() if name in names)
        report.line(f"  {name}", _fmt_s(t), f"({used})" if used else "(not in a floor)")
    floor = {op: sum(costs[n] for n in names) for op, names in floors.items()}
    for op in ("seal", "open"):
        ratio = took[op] / floor[op]
        target = TARGET_RATIO[op]
        verdict = "ok" if ratio <= target else f"OVER the {target}x target"
        report.line(f"{op} floor (sum of its primitives)", _fmt_s(floor[op]))
        report.line(
            f"{op}",
            _fmt_s(took[op]),
            f"{ratio:.2f}x floor, {verdict} ({_round_ratios(samples, op, floors[op])})",
        )
    with_checks = floor["open"] + costs[CERT_PATH]
    report.line(
        "open, against its floor + the signer checks",
        "",
        f"{took['open'] / with_checks:.2f}x (the fixed cost that dominates small messages)",
    )
    whole_floor, whole = floor["seal"] + floor["open"], took["seal"] + took["open"]
    report.line("seal + open", _fmt_s(whole), f"{whole / whole_floor:.2f}x the summed floor")
    return (
        f"{_size(len(dossier)):>7}: seal {took['seal'] * 1000:8.1f} ms "
        f"({took['seal'] / floor['seal']:.2f}x)  open {took['open'] * 1000:8.1f} ms "
        f"({took['open'] / floor['open']:.2f}x)"
    )


def _memory(report: Report, parties: Parties, dossier: bytes) -> list[str]:
    message = _seal(parties, parse_xml(dossier).getroot()).data
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        payload_file = Path(tmp) / "dossier.xml"
        message_file = Path(tmp) / "message.xml"
        payload_file.write_bytes(dossier)
        message_file.write_bytes(message)
        for mode, path in (("seal", payload_file), ("open", message_file)):
            result = peak_memory(mode, path)
            ratio = result["delta"] / result["message_bytes"]
            ok = "ok" if ratio < TARGET_MEMORY else f"OVER target {TARGET_MEMORY}x"
            report.line(
                f"peak memory of {mode} ({_size(result['message_bytes'])} message)",
                f"{result['delta'] / 1024 / 1024:9.1f} MB",
                f"{ratio:.2f}x message size ({ok})",
            )
            out.append(f"{_size(len(message)):>7}: peak memory of {mode} {ratio:.2f}x the message")
    return out


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2], sys.argv[3])))
    else:
        raise SystemExit("usage: python -m benchmarks.bench_wss --child seal|open FILE")
