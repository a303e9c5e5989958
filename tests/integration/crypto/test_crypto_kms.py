"""dr.crypto with KMS in the DR region, against a moto server process."""

from __future__ import annotations

import io
import os

import pytest

from dr.aws import AwsSession
from dr.crypto import IntegrityError, KmsKeyProvider, decrypt_from, encrypt_to, read_header
from dr.crypto.format import build_header
from dr.errors import AwsError, DrError

pytestmark = [pytest.mark.integration, pytest.mark.localstack]

DR = "us-west-2"
CTX = {"dr:backup": "office-lamp/20261126-1300", "dr:kind": "mysql"}
OTHER_CTX = {"dr:backup": "office-lamp/20261126-1400", "dr:kind": "mysql"}


@pytest.fixture
def kms(boto):
    return boto("kms", DR)


@pytest.fixture
def dr_key(kms) -> str:
    arn = kms.create_key(Description="dr backups")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/dr-backups", TargetKeyId=arn)
    return arn


@pytest.fixture
def provider(endpoint, dr_key) -> KmsKeyProvider:
    return KmsKeyProvider(AwsSession(endpoint_url=endpoint).kms(DR), "alias/dr-backups")


def encrypt(provider, data: bytes, context=CTX, chunk: int = 1024) -> bytes:
    out = io.BytesIO()
    with encrypt_to(out, provider, context, chunk) as w:
        w.write(data)
    return out.getvalue()


def test_round_trip_and_header(provider, dr_key, kms):
    data = os.urandom(5 * 1024 + 77)
    blob = encrypt(provider, data)
    assert provider.key_id == dr_key  # the alias resolved to the ARN, in the DR region
    header = read_header(io.BytesIO(blob))
    assert (header.kind, header.key_id, header.context, header.chunk_size) == \
        ("kms", dr_key, CTX, 1024)
    assert f":{DR}:" in header.key_id
    assert decrypt_from(io.BytesIO(blob), provider, CTX).read() == data
    # the wrapped key is a plain KMS ciphertext bound to the context: KMS itself can open it
    assert len(kms.decrypt(CiphertextBlob=header.wrapped_key, EncryptionContext=CTX)
               ["Plaintext"]) == 32


def test_a_fresh_data_key_per_file(provider):
    a, b = encrypt(provider, b"same"), encrypt(provider, b"same")
    ha, hb = read_header(io.BytesIO(a)), read_header(io.BytesIO(b))
    assert ha.wrapped_key != hb.wrapped_key and ha.nonce_prefix != hb.nonce_prefix
    assert a[ha.size:] != b[hb.size:]


def test_moto_enforces_the_encryption_context(kms, provider):
    """Documents the simulator: a different context on Decrypt is InvalidCiphertextException."""
    header = read_header(io.BytesIO(encrypt(provider, b"")))
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=header.wrapped_key, EncryptionContext=OTHER_CTX)


def test_different_context_is_an_integrity_error(provider):
    blob = encrypt(provider, b"data" * 100)
    with pytest.raises(IntegrityError, match="the encryption context does not match: expected "
                                             '.*1400.*, the file says .*1300'):
        decrypt_from(io.BytesIO(blob), provider, OTHER_CTX)


def test_forged_context_in_the_header_is_refused_by_kms(provider):
    blob = encrypt(provider, b"data" * 100)
    h = read_header(io.BytesIO(blob))
    forged = build_header(chunk_size=h.chunk_size, kind="kms", key_id=h.key_id,
                          wrapped_key=h.wrapped_key, context=OTHER_CTX,
                          nonce_prefix=h.nonce_prefix)
    with pytest.raises(IntegrityError, match="KMS could not unwrap the data key with "
                                             ".*encryption context") as err:
        decrypt_from(io.BytesIO(forged.raw + blob[h.size:]), provider, OTHER_CTX)
    assert err.value.exit_code == 1


def test_a_different_kms_key(endpoint, kms, provider, dr_key):
    blob = encrypt(provider, b"data")
    other_arn = kms.create_key(Description="not the dr key")["KeyMetadata"]["Arn"]
    other = KmsKeyProvider(AwsSession(endpoint_url=endpoint).kms(DR), other_arn)
    with pytest.raises(IntegrityError, match=(
            f"^this file was encrypted with kms key {dr_key}; the key provided is kms key "
            f"{other_arn}")):
        decrypt_from(io.BytesIO(blob), other)


def test_forged_key_id_pointing_at_another_kms_key(endpoint, kms, provider):
    """The header names key B but the data key was wrapped by A. Real KMS answers
    IncorrectKeyException (an IntegrityError); moto answers AccessDeniedException, which dr keeps
    as an AWS error whose message names both causes. Either way: exit 1, nothing decrypted."""
    blob = encrypt(provider, b"data")
    h = read_header(io.BytesIO(blob))
    other_arn = kms.create_key()["KeyMetadata"]["Arn"]
    other = KmsKeyProvider(AwsSession(endpoint_url=endpoint).kms(DR), other_arn)
    forged = build_header(chunk_size=h.chunk_size, kind="kms", key_id=other_arn,
                          wrapped_key=h.wrapped_key, context=h.context,
                          nonce_prefix=h.nonce_prefix)
    with pytest.raises(DrError) as err:
        decrypt_from(io.BytesIO(forged.raw + blob[h.size:]), other)
    assert err.value.exit_code == 1
    assert isinstance(err.value, (IntegrityError, AwsError))
    assert "different key" in str(err.value) or "not wrapped by" in str(err.value)


def test_tampered_wrapped_key(provider):
    blob = bytearray(encrypt(provider, b"data"))
    h = read_header(io.BytesIO(bytes(blob)))
    at = bytes(blob).index(h.wrapped_key) + len(h.wrapped_key) // 2
    blob[at] ^= 1
    with pytest.raises(IntegrityError, match="KMS could not unwrap"):
        decrypt_from(io.BytesIO(bytes(blob)), provider, CTX)


def test_tampered_chunk_and_truncation(provider):
    data = os.urandom(3000)
    blob = encrypt(provider, data)
    h = read_header(io.BytesIO(blob))
    bad = bytearray(blob)
    bad[h.size + 1024 + 20 + 100] ^= 1
    r = decrypt_from(io.BytesIO(bytes(bad)), provider, CTX)
    assert r.read(5000) == data[:1024]
    with pytest.raises(IntegrityError, match="chunk 1 .*failed authentication"):
        r.read(5000)
    with pytest.raises(IntegrityError, match="without a final chunk"):
        decrypt_from(io.BytesIO(blob[:h.size + 2 * 1044]), provider, CTX).read()


def test_missing_key_is_an_aws_error(endpoint):
    provider = KmsKeyProvider(AwsSession(endpoint_url=endpoint).kms(DR),
                              "alias/does-not-exist")
    with pytest.raises(AwsError) as err:
        encrypt_to(io.BytesIO(), provider, CTX)
    assert err.value.code == "NotFoundException"
    assert DR in str(err.value)
