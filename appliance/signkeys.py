"""The key and certificate chain that sign the box's results (C2PA provenance).

On first start the box makes its own: a box-local CA (`STATE/provenance/ca.pem`, its key in
`ca-key.pem`) and an EC P-256 signing key with a certificate that CA issued
(digitalSignature, emailProtection: what C2PA validators ask of a signer), kept together in
`STATE/provenance/signer.pem` so that a power cut never leaves a key beside another key's
certificate. Keys are private (0600); every file is written atomically. The owner may
install a key and chain of their own (`appliance provenance install-key`, or the settings
`provenance.key_file` and `provenance.cert_file`), and rotate the box's key (`appliance
provenance rotate`).

A key or chain that does not read, or that do not belong together, is a ConfigError naming
the file and the fixes: the box does not start rather than serve results that quietly stop
being signed (docs/hardening.md, row 43).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ConfigError
from appliance.storage import write_bytes_atomic

log = logging.getLogger(__name__)
FOLDER = "provenance"
SIGNER_FILE = "signer.pem"
CA_FILE = "ca.pem"  # the box CA's certificate: public, for whoever wants to trust the box
CA_KEY_FILE = "ca-key.pem"
CA_YEARS = 20
LEAF_YEARS = 5
FIX = ("run `appliance provenance rotate` for a new box key, install yours with `appliance "
       "provenance install-key KEY CERTS`, or set provenance.enabled = false")


@dataclass(frozen=True)
class SigningKey:
    """A private key and its certificate chain (signer first), as PEM, and the C2PA
    algorithm name they sign with (es256, es384, es512, ps256, ed25519)."""

    key_pem: bytes
    chain_pem: bytes
    alg: str
    subject: str
    issuer: str
    expires: str
    source: str  # where it was read from, for messages


@dataclass(frozen=True)
class Known:
    """The certificates whose signatures this box calls its own (PEM): `box_ca`, the box's
    CA (it issued every key the box made, rotated ones too: verify trusts what chains to
    it); and the owner's installed key, known by its chain's top certificate and its own
    serial number (both must hold: the top may be a CA that signs for many others)."""

    box_ca: bytes = b""
    owner_top: bytes = b""
    owner_serial: str = ""


def known(state_dir: str | Path, chain_pem: bytes | None, made_here: bool = False) -> Known:
    """What this box knows of its keys: the CA certificate in its state folder, and the
    chain it signs with (`chain_pem`, None: none; `made_here`: a key the box made for this
    run only, whose CA is in memory). Never raises: what does not read is not known."""
    from cryptography import x509

    anchors = []
    with contextlib.suppress(OSError, ValueError):
        anchors.append(_cert_pem(x509.load_pem_x509_certificate(
            (folder(state_dir) / CA_FILE).read_bytes())))
    try:
        chain = x509.load_pem_x509_certificates(chain_pem) if chain_pem else []
    except ValueError:
        chain = []
    if not chain:
        return Known(b"".join(anchors))
    top = _cert_pem(chain[-1])
    if made_here or top in anchors:
        return Known(b"".join(dict.fromkeys([*anchors, top])))
    return Known(b"".join(anchors), top, str(chain[0].serial_number))


def installed_chain(settings) -> bytes | None:
    """The certificate chain the box signs with, read without making a key: the owner's
    `provenance.cert_file`, else the box's signer file (None: none, or not readable here)."""
    path = Path(settings.provenance.cert_file or folder(settings.state.dir) / SIGNER_FILE)
    try:
        return _pem_blocks(path.read_bytes(), b"CERTIFICATE")
    except (OSError, ValueError):
        return None


def folder(state_dir: str | Path) -> Path:
    return Path(state_dir) / FOLDER


def load_or_make(state_dir: str | Path, key_file: str = "", cert_file: str = "") -> SigningKey:
    """The key the box signs with: the owner's files when the settings name them, else the
    box's own, made on first start. A state folder that cannot be written gives a key for
    this run only (logged). Raises ConfigError for a key or chain that does not read."""
    if key_file or cert_file:
        if not (key_file and cert_file):
            raise ConfigError("provenance.key_file and provenance.cert_file go together: set "
                              "both (the private key, and its certificate chain) or neither")
        return parse(_read(Path(key_file)), _read(Path(cert_file)), f"{key_file}, {cert_file}")
    path = folder(state_dir) / SIGNER_FILE
    if path.exists():
        data = _read(path)
        return parse(data, data, str(path))
    try:
        return rotate(state_dir)
    except OSError as exc:
        log.warning("the signing key could not be saved in %s (%s): results are signed with a "
                    "key made for this run only", folder(state_dir), exc.strerror or exc)
        ca_key, ca_cert = _new_ca()
        return _issue(ca_key, ca_cert, "memory")


def rotate(state_dir: str | Path) -> SigningKey:
    """A new signing key issued by the box's CA (made when missing or unreadable), saved as
    the box's signer. Raises OSError when the state folder cannot be written."""
    base = folder(state_dir)
    ca_key, ca_cert = _read_ca(base)
    if ca_key is None:
        ca_key, ca_cert = _new_ca()
        write_bytes_atomic(base / CA_KEY_FILE, _key_pem(ca_key), 0o600)
        write_bytes_atomic(base / CA_FILE, _cert_pem(ca_cert), 0o644)
    signer = _issue(ca_key, ca_cert, str(base / SIGNER_FILE))
    write_bytes_atomic(base / SIGNER_FILE, signer.key_pem + signer.chain_pem, 0o600)
    return signer


def install(state_dir: str | Path, key_path: str | Path, certs_path: str | Path) -> SigningKey:
    """Check the owner's key and chain, then make them the box's signer. Raises ConfigError
    when they do not read or belong together, OSError when they cannot be saved."""
    key_pem, chain_pem = _read(Path(key_path)), _read(Path(certs_path))
    signer = parse(key_pem, chain_pem, f"{key_path}, {certs_path}")
    write_bytes_atomic(folder(state_dir) / SIGNER_FILE, signer.key_pem + signer.chain_pem, 0o600)
    return signer


def parse(key_pem: bytes, chain_pem: bytes, source: str) -> SigningKey:
    """The signing key in `key_pem` and the certificates in `chain_pem` (either may hold
    both). Raises ConfigError naming `source` when one is missing, does not read, or the
    first certificate is not the key's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(_pem_blocks(key_pem, b"PRIVATE KEY"), None)
        certs = x509.load_pem_x509_certificates(_pem_blocks(chain_pem, b"CERTIFICATE"))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"the provenance signing key or certificate in {source} does not "
                          f"read ({_first_line(exc)}): {FIX}") from None
    if _public(key.public_key()) != _public(certs[0].public_key()):
        raise ConfigError(f"the first certificate in {source} is not the signing key's: put "
                          f"the key's own certificate first, then its issuers; or {FIX}")
    leaf = certs[0]
    return SigningKey(_key_pem(key), b"".join(_cert_pem(c) for c in certs), _alg(key, source),
                      leaf.subject.rfc4514_string(), leaf.issuer.rfc4514_string(),
                      leaf.not_valid_after_utc.isoformat(), source)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"the provenance key file {path} cannot be read "
                          f"({exc.strerror or exc}): {FIX}") from None


def _pem_blocks(data: bytes, kind: bytes) -> bytes:
    """The PEM blocks of `kind` in `data` (a file may hold a key and certificates); raises
    ValueError when there is none or one is cut short."""
    blocks, rest = [], data
    while (start := rest.find(b"-----BEGIN ")) != -1:
        end = rest.find(b"-----END ", start)
        close = rest.find(b"-----", end + 9) if end != -1 else -1
        if close == -1:
            raise ValueError("a PEM block is cut short")
        block, rest = rest[start:close + 5], rest[close + 5:]
        if kind in block.split(b"\n", 1)[0]:
            blocks.append(block + b"\n")
    if not blocks:
        raise ValueError(f"no {kind.decode().lower()} in it")
    return blocks[0] if kind == b"PRIVATE KEY" else b"".join(blocks)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _alg(key, source: str) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ec.EllipticCurvePrivateKey):
        curves = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in curves:
            return curves[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise ConfigError(f"the provenance key in {source} is of a kind C2PA does not sign with "
                      "(use EC P-256, P-384, P-521, RSA or Ed25519): " + FIX)


def _public(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _read_ca(base: Path):
    """The box CA's key and certificate, or (None, None) when missing, unreadable or not a
    pair (a power cut between the two writes)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key((base / CA_KEY_FILE).read_bytes(), None)
        cert = x509.load_pem_x509_certificate((base / CA_FILE).read_bytes())
    except (OSError, ValueError, TypeError):
        return None, None
    if _public(key.public_key()) != _public(cert.public_key()):
        return None, None
    return key, cert


def _name(common: str):
    import socket

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"appliance box {socket.gethostname()}"[:64]),
    ])


def _new_ca():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("appliance box CA (this box only)")
    cert = (_cert_builder(name, name, key.public_key(), CA_YEARS)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(cert_sign=True), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _issue(ca_key, ca_cert, source: str) -> SigningKey:
    """A new EC P-256 signing key and its certificate from the box's CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_cert_builder(_name("appliance box results signer"), ca_cert.subject,
                          key.public_key(), LEAF_YEARS)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return parse(_key_pem(key), _cert_pem(cert) + _cert_pem(ca_cert), source)


def _cert_builder(subject, issuer, public_key, years: int):
    from cryptography import x509

    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            # A day back: a Pi without a battery clock may start a little behind.
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365 * years))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                           critical=False))


def _usage(cert_sign: bool):
    from cryptography import x509

    return x509.KeyUsage(digital_signature=not cert_sign, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False,
                         decipher_only=False)
