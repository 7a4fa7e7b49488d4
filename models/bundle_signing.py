"""Ed25519 signatures on a bundle's manifest: who built a bundle, not only that it is whole.

The manifest lists the SHA-256 of every other file, so signing its exact bytes signs the whole
bundle. The signature lives beside it in ``signature.json`` (algorithm, key id, signature). The
private key stays with central training (a PEM file outside any bundle); each gateway holds the
public key and refuses a bundle whose signature is missing or does not verify.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> priv, pub = generate_key_pair(d / "k.key", d / "k.pub")
>>> signer = Signer.from_file(priv)
>>> sig = signer(b'{"files": {}}')
>>> sig["algorithm"], sig["key_id"] == key_id(load_public_key(pub))
('ed25519', True)
>>> check_signature(b'{"files": {}}', sig, load_public_key(pub))
>>> check_signature(b'{"files": {"x": 1}}', sig, load_public_key(pub))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
models.bundle.BundleError: signature.json does not verify against manifest.json with the trusted key (...): the bundle was altered after signing or signed by another key
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from models.bundle import SIGNATURE, BundleError

ALGORITHM = "ed25519"


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short fingerprint of a public key (16 hex digits of its SHA-256), shown in refusals."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key_pair(private_path: Path, public_path: Path) -> tuple[Path, Path]:
    """Write a new key pair as PEM files (the private one readable by its owner only).

    Refuses to overwrite an existing private key: losing it means re-keying every gateway.
    """
    private_path, public_path = Path(private_path), Path(public_path)
    if private_path.exists():
        raise FileExistsError(f"{private_path} exists; refusing to overwrite a signing key")
    private_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


def _read_pem(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise BundleError(f"{what} {path} cannot be read: {err.strerror}") from None


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """The Ed25519 public key in a PEM file; ``BundleError`` names the file when it is not one."""
    try:
        key = serialization.load_pem_public_key(_read_pem(Path(path), "public key"))
    except ValueError:
        raise BundleError(f"public key {path} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"public key {path} is not an Ed25519 key")
    return key


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM file (unencrypted PKCS#8)."""
    try:
        key = serialization.load_pem_private_key(_read_pem(Path(path), "signing key"), None)
    except (ValueError, TypeError):
        raise BundleError(f"signing key {path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"signing key {path} is not an Ed25519 key")
    return key


class Signer:
    """Signs a manifest's bytes; ``models.bundle.write_bundle(sign=...)`` calls it.

    >>> s = Signer(Ed25519PrivateKey.generate())
    >>> sorted(s(b"manifest"))
    ['algorithm', 'key_id', 'signature']
    """

    def __init__(self, private_key: Ed25519PrivateKey):
        self._key = private_key

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Signer:
        return cls(load_private_key(path))

    @property
    def key_id(self) -> str:
        return key_id(self._key.public_key())

    def __call__(self, manifest: bytes) -> dict:
        signature = base64.b64encode(self._key.sign(manifest)).decode("ascii")
        return {"algorithm": ALGORITHM, "key_id": self.key_id, "signature": signature}


def check_signature(manifest: bytes, signature: dict, public_key: Ed25519PublicKey) -> None:
    """``BundleError`` unless ``signature`` (``signature.json``) signs ``manifest`` with the key."""
    trusted = key_id(public_key)
    if signature.get("algorithm") != ALGORITHM:
        raise BundleError(
            f"{SIGNATURE}: algorithm {signature.get('algorithm')!r}; the gateway accepts {ALGORITHM}"
        )
    try:
        raw = base64.b64decode(str(signature.get("signature", "")), validate=True)
        public_key.verify(raw, manifest)
    except (InvalidSignature, ValueError):
        signed_by = signature.get("key_id")
        by = f"signed by key {signed_by}, " if signed_by and signed_by != trusted else ""
        raise BundleError(
            f"{SIGNATURE} does not verify against manifest.json with the trusted key "
            f"({by}trusted key {trusted}): the bundle was altered after signing or signed by "
            "another key"
        ) from None
