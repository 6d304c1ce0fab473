"""The agency's seal on its documents: a visible red round seal drawn from the agency's name
(SVG, rendered by WeasyPrint; a drawing, never an image of a real seal) and a PDF signature a
reader can check (PAdES-style CMS by pyHanko, ECDSA P-256 with SHA-256).

The signing key and its X.509 certificate are two PEM files. A real agency gives the paths of the
key and of the certificate its CA issued; without them, the first start writes a new key and a
self-signed certificate naming the agency into the data folder (``var/keys/``), as it does the
evidence signing key. :func:`verify_pdf` checks a signed PDF offline against the agency's
certificate: the bytes are the ones signed, the signature covers the whole file, and the signer
is the agency.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
from dataclasses import dataclass
from html import escape
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from events import OffsiteError

SEAL_FIELD = "AgencySeal"
RED = "#d0021b"


class SealError(OffsiteError):
    """The agency's signing key or certificate is missing or unusable, or a PDF is unreadable."""


def seal_svg(agency: str, size_mm: int = 42) -> str:
    """A red round seal: a double ring, the agency's name along the upper arc, a five-pointed
    star in the middle. Each character is placed and turned on its own (no textPath)."""
    r, chars = 50.0, list(agency.strip()) or ["（", "执", "法", "机", "关", "）"]
    # the name spans at most 240 degrees, centred on the top, each character upright to the ring
    step = min(240.0 / max(len(chars), 1), 26.0)
    start = -step * (len(chars) - 1) / 2
    text = []
    for i, ch in enumerate(chars):
        a = start + i * step
        x = 60 + 38 * math.sin(math.radians(a))
        y = 60 - 38 * math.cos(math.radians(a))
        text.append(f'<text x="{x:.2f}" y="{y:.2f}" transform="rotate({a:.2f} {x:.2f} {y:.2f})" '
                    f'font-size="{min(13.0, 0.9 * step * 38 * math.pi / 180):.1f}" '
                    f'text-anchor="middle" dominant-baseline="central">{escape(ch)}</text>')  # fmt: skip
    star = " ".join(
        f"{60 + (14 if k % 2 == 0 else 5.6) * math.sin(math.radians(36 * k)):.2f},"
        f"{62 - (14 if k % 2 == 0 else 5.6) * math.cos(math.radians(36 * k)):.2f}"
        for k in range(10)
    )
    return (
        f'<svg class="seal-mark" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 120" '
        f'width="{size_mm}mm" height="{size_mm}mm" role="img" aria-label="{escape(agency)}（印章）">'
        f'<g fill="none" stroke="{RED}"><circle cx="60" cy="60" r="{r + 6}" stroke-width="3.2"/>'
        f'<circle cx="60" cy="60" r="{r + 2}" stroke-width="0.8"/></g>'
        f'<polygon points="{star}" fill="{RED}"/>'
        f'<g fill="{RED}" font-family="WenQuanYi Zen Hei, sans-serif">{"".join(text)}</g></svg>'
    )


@dataclass(frozen=True)
class Verified:
    """What :func:`verify_pdf` found: who signed and when, and whether it holds."""

    ok: bool
    signer: str
    signed_at: dt.datetime | None
    problems: tuple[str, ...]


def _write_new(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def create_key_and_certificate(key: Path, cert: Path, agency: str, now: dt.datetime) -> None:
    """A new ECDSA P-256 key (mode 0600) and a self-signed certificate naming ``agency``, valid
    ten years from ``now``. Refuses to overwrite either file: documents signed with them would
    lose their signer."""
    if key.exists() or cert.exists():
        raise SealError(f"document signing key {key} or certificate {cert} exists; not overwritten")
    private = ec.generate_private_key(ec.SECP256R1())
    # X.520 names hold at most 64 bytes (21 Chinese characters): a longer name is cut there
    short = agency.encode()[:64].decode(errors="ignore") or "offsite"
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, short),
                      x509.NameAttribute(NameOID.COMMON_NAME, short)])  # fmt: skip
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_cert_sign=True,
                crl_sign=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(private, hashes.SHA256())
    )
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())  # fmt: skip
    _write_new(key, pem, 0o600)
    _write_new(cert, certificate.public_bytes(serialization.Encoding.PEM), 0o644)


def load_certificate(path: Path) -> asn1_x509.Certificate:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise SealError(f"cannot load the document certificate {path}: {exc}") from exc
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def common_name(cert: asn1_x509.Certificate) -> str:
    """The signer as a reader names it: the certificate's common name (else its subject)."""
    return str(cert.subject.native.get("common_name") or cert.subject.human_friendly)


class Sealer:
    """Signs the agency's PDFs with its key and certificate. Its repr names the signer only."""

    def __init__(self, key: Path, cert: Path) -> None:
        from pyhanko.sign import signers
        from pyhanko_certvalidator.registry import SimpleCertificateStore

        try:
            private = serialization.load_pem_private_key(key.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise SealError(f"cannot load the document signing key {key}: {exc}") from exc
        self.certificate = load_certificate(cert)
        der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())  # fmt: skip
        self._signer = signers.SimpleSigner(
            signing_cert=self.certificate, signing_key=asn1_keys.PrivateKeyInfo.load(der),
            cert_registry=SimpleCertificateStore.from_certs([self.certificate]))  # fmt: skip
        self.name = common_name(self.certificate)

    @classmethod
    def at_first_start(cls, key: Path, cert: Path, agency: str, now: dt.datetime) -> Sealer:
        """The sealer of ``key`` and ``cert``; when neither file exists, both are made first."""
        if not key.exists() and not cert.exists():
            create_key_and_certificate(key, cert, agency, now)
        return cls(key, cert)

    def sign(self, pdf: bytes) -> bytes:
        """``pdf`` with the agency's signature over the whole file. Blocking: call in a thread."""
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.sign import signers

        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        meta = signers.PdfSignatureMetadata(field_name=SEAL_FIELD, reason="行政执法文书电子签章",
                                            name=self.name)  # fmt: skip
        out = signers.sign_pdf(writer, meta, signer=self._signer)
        return bytes(out.getvalue())

    def __repr__(self) -> str:
        return f"Sealer({self.name!r})"


def verify_pdf(pdf: bytes, trusted: asn1_x509.Certificate | None) -> Verified:
    """Check the agency's signature on ``pdf`` offline: intact, covering the whole file, and
    (when ``trusted`` is given) made with that certificate or one it issued."""
    from pyhanko.pdf_utils.misc import PdfReadError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    try:
        sigs = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    except (PdfReadError, ValueError, KeyError) as exc:
        return Verified(False, "", None, (f"not a readable PDF: {exc}",))
    if not sigs:
        return Verified(False, "", None, ("no signature in the file",))
    context = ValidationContext(trust_roots=[trusted] if trusted else [], allow_fetching=False)
    try:
        status = validate_pdf_signature(sigs[-1], context)
    except Exception as exc:  # pyHanko raises many kinds on a damaged file
        return Verified(False, "", None, (f"the signature cannot be checked: {exc}",))
    problems = []
    if not (status.intact and status.valid):
        problems.append("the file was changed after it was signed (or the signature is broken)")
    if status.coverage is None or status.coverage.name != "ENTIRE_FILE":
        problems.append("the signature does not cover the whole file")
    if trusted is not None and not status.trusted:
        problems.append("signed by a certificate that is not the agency's")
    return Verified(not problems, common_name(status.signing_cert),
                    status.signer_reported_dt, tuple(problems))  # fmt: skip
