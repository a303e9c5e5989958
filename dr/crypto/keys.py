"""Key providers: who wraps a file's data key. KMS in the DR region, or a local key file offline.

Every file gets a fresh random 256-bit data key; the provider wraps it (binding the encryption
context) and the wrapped blob goes into the file's header. Unwrapping needs the same key and the
same context. A provider never exposes its key material in repr/str.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dr.aws import aws_call
from dr.crypto.errors import IntegrityError
from dr.crypto.format import DATA_KEY_LEN, canonical_context
from dr.errors import AwsError, ConfigError, UsageError
from dr.files import fsync_dir


@runtime_checkable
class KeyProvider(Protocol):
    kind: str  # "kms" | "local"
    key_id: str  # KMS key ARN, or "local:<hex fingerprint>"

    def new_data_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        """A fresh (plaintext 32-byte data key, wrapped blob) bound to `context`."""
        ...

    def unwrap(self, wrapped: bytes, key_id: str, context: Mapping[str, str]) -> bytes:
        """The plaintext data key; IntegrityError if the key or the context does not match."""
        ...


def key_mismatch(file_kind: str, file_key_id: str, provider: KeyProvider) -> IntegrityError:
    return IntegrityError(
        f"this file was encrypted with {file_kind} key {file_key_id}; the key provided is "
        f"{provider.kind} key {provider.key_id}",
        hint="decrypt with the key the file names (`read_header` shows it)")


# --- local key files -------------------------------------------------------------------------

KEY_FILE_MAGIC = "dr-local-key-v1"
LOCAL_WRAP_VERSION = 1
LOCAL_WRAP_NONCE_LEN = 12
LOCAL_WRAP_AAD_PREFIX = b"dr-local-wrap-v1\x00"
LOCAL_KEY_ID_DOMAIN = b"dr-local-key-id-v1\x00"
LOCAL_WRAPPED_LEN = 1 + LOCAL_WRAP_NONCE_LEN + DATA_KEY_LEN + 16


def local_key_id(key: bytes) -> str:
    """The public name of a local key: a truncated SHA-256 of it, domain-separated."""
    return "local:" + hashlib.sha256(LOCAL_KEY_ID_DOMAIN + key).hexdigest()[:32]


def _key_file_text(key: bytes) -> str:
    return (f"{KEY_FILE_MAGIC}\n"
            "# dr backup encryption key. Keep it secret and keep a copy offline: backups\n"
            "# encrypted with it cannot be restored without it.\n"
            f"# key id: {local_key_id(key)}\n"
            f"{base64.b64encode(key).decode('ascii')}\n")


def _parse_key_file(path: Path, text: str) -> bytes:
    lines = [line.strip() for line in text.splitlines()]
    if not lines or lines[0] != KEY_FILE_MAGIC:
        raise ConfigError(f"{path} is not a dr local key file (the first line should be "
                          f"{KEY_FILE_MAGIC!r})", hint="create one with `dr keygen PATH`")
    body = [line for line in lines[1:] if line and not line.startswith("#")]
    try:
        if len(body) != 1:
            raise ValueError
        key = base64.b64decode(body[0], validate=True)
    except (ValueError, binascii.Error):
        key = b""
    if len(key) != DATA_KEY_LEN:
        raise ConfigError(f"{path}: the key line is not {DATA_KEY_LEN} bytes of base64",
                          hint="the file is damaged; use your offline copy of the key file")
    return key


def generate_key_file(path: Path) -> str:
    """Write a new random local key to `path` (mode 0600, never overwriting); return its key id.

    Written to a temporary file in the same directory, fsynced, then hard-linked into place, so
    `path` either does not exist or holds a complete key."""
    path = Path(path)
    key = os.urandom(DATA_KEY_LEN)
    data = _key_file_text(key).encode("ascii")
    if path.exists() or path.is_symlink():
        raise _exists(path)
    if not path.parent.is_dir():
        raise UsageError(f"cannot write the key file {path}: {path.parent} is not a directory")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        _write_new(tmp, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise _exists(path) from None
        except OSError:  # a filesystem without hard links: exclusive create instead
            _write_new(path, data)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return local_key_id(key)


def _exists(path: Path) -> UsageError:
    return UsageError(f"{path} already exists; dr never overwrites a key file (backups encrypted "
                      "with it would become unreadable)",
                      hint="choose another path, or move the old key file away if you are sure")


def _write_new(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise _exists(path) from None
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


class LocalKeyProvider:
    """Wraps data keys with AES-256-GCM under the key in a local key file (for offline use).

    wrapped = 0x01 || nonce(12) || AES-GCM(file key, nonce, data key, aad = prefix || context)."""

    kind = "local"

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            text = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            raise ConfigError(f"local key file {self.path} not found",
                              hint="create one with `dr keygen PATH`, or point at the right "
                                   "file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the local key file {self.path}: {exc}") from None
        key = _parse_key_file(self.path, text)
        self.key_id = local_key_id(key)
        self._aead = AESGCM(key)  # the raw key is kept nowhere else
        del key, text

    def __repr__(self) -> str:
        return f"LocalKeyProvider(path={str(self.path)!r}, key_id={self.key_id!r})"

    __str__ = __repr__

    def __reduce__(self):  # never pickle key material
        raise TypeError("a LocalKeyProvider cannot be pickled")

    def new_data_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        data_key = os.urandom(DATA_KEY_LEN)
        return data_key, self._wrap(data_key, context)

    def _wrap(self, data_key: bytes, context: Mapping[str, str], *,
              _nonce: bytes | None = None) -> bytes:
        nonce = _nonce if _nonce is not None else os.urandom(LOCAL_WRAP_NONCE_LEN)
        aad = LOCAL_WRAP_AAD_PREFIX + canonical_context(context)
        sealed = self._aead.encrypt(nonce, data_key, aad)
        return bytes([LOCAL_WRAP_VERSION]) + nonce + sealed

    def unwrap(self, wrapped: bytes, key_id: str, context: Mapping[str, str]) -> bytes:
        if key_id != self.key_id:
            raise key_mismatch("local", key_id, self)
        if len(wrapped) != LOCAL_WRAPPED_LEN or wrapped[0] != LOCAL_WRAP_VERSION:
            raise IntegrityError(f"backup file is damaged or was tampered with: the wrapped data "
                                 f"key in the header is malformed ({len(wrapped)} bytes)")
        nonce = wrapped[1:1 + LOCAL_WRAP_NONCE_LEN]
        try:
            return self._aead.decrypt(nonce, wrapped[1 + LOCAL_WRAP_NONCE_LEN:],
                                      LOCAL_WRAP_AAD_PREFIX + canonical_context(context))
        except InvalidTag:
            raise IntegrityError(
                f"backup file is damaged or was tampered with: the data key in the header does "
                f"not unwrap with local key {self.key_id} (the wrapped key or the encryption "
                f"context in the header was changed)") from None


# --- KMS ---------------------------------------------------------------------------------------

class KmsKeyProvider:
    """Wraps data keys with KMS (GenerateDataKey / Decrypt) under a key in the DR region.

    `key` may be an alias, a key id or an ARN; `key_id` is the ARN (one DescribeKey, cached).
    The encryption context is passed to KMS, which binds it to the wrapped key."""

    kind = "kms"

    def __init__(self, kms_client: Any, key: str):
        self._kms = kms_client
        self.key = key
        self.region = getattr(getattr(kms_client, "meta", None), "region_name", "?")
        self._arn: str | None = None

    def __repr__(self) -> str:
        return f"KmsKeyProvider(key={self.key!r}, region={self.region!r})"

    @property
    def key_id(self) -> str:
        if self._arn is None:
            meta = aws_call(self._kms.describe_key, KeyId=self.key, action="describing key",
                            resource=self.key, region=self.region)["KeyMetadata"]
            self._arn = meta["Arn"]
        return self._arn

    def new_data_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        canonical_context(context)  # validate before calling KMS
        resp = aws_call(self._kms.generate_data_key, KeyId=self.key_id, KeySpec="AES_256",
                        EncryptionContext=dict(context), action="generating a data key with",
                        resource=self.key_id, region=self.region)
        plaintext, blob = resp["Plaintext"], resp["CiphertextBlob"]
        if len(plaintext) != DATA_KEY_LEN:
            raise AwsError(f"KMS returned a {len(plaintext)}-byte data key for {self.key_id}, "
                           f"expected {DATA_KEY_LEN}")
        return plaintext, blob

    def unwrap(self, wrapped: bytes, key_id: str, context: Mapping[str, str]) -> bytes:
        if key_id != self.key_id:
            raise key_mismatch("kms", key_id, self)
        try:
            resp = aws_call(self._kms.decrypt, CiphertextBlob=wrapped, KeyId=key_id,
                            EncryptionContext=dict(context), action="decrypting the data key with",
                            resource=key_id, region=self.region)
        except AwsError as exc:
            raise self._decrypt_error(exc, key_id) from exc
        plaintext = resp["Plaintext"]
        if resp.get("KeyId", key_id) != key_id or len(plaintext) != DATA_KEY_LEN:
            raise IntegrityError(f"backup file is damaged or was tampered with: KMS unwrapped "
                                 f"the data key with {resp.get('KeyId')}, not {key_id}")
        return plaintext

    def _decrypt_error(self, exc: AwsError, key_id: str) -> Exception:
        if exc.code == "InvalidCiphertextException":
            return IntegrityError(
                f"KMS could not unwrap the data key with {key_id}: the wrapped key or the "
                "encryption context in the header is not what KMS sealed (the header was "
                "changed, or the file was encrypted under another context)")
        if exc.code == "IncorrectKeyException":
            return IntegrityError(
                f"backup file is damaged or was tampered with: its data key was not wrapped by "
                f"{key_id}, the key the header names")
        if exc.code in ("AccessDeniedException", "AccessDenied"):
            return AwsError(
                f"KMS denied decrypting the data key with {key_id} in {self.region}: dr's role "
                "lacks kms:Decrypt on this key (or a key-policy condition on the encryption "
                "context failed), or the file's wrapped key belongs to a different key",
                code=exc.code,
                hint="check the key policy and dr's IAM role allow kms:Decrypt on the DR key")
        return exc
