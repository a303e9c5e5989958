"""Streaming, authenticated envelope encryption for backup files. FORMAT.md documents the bytes.

    with encrypt_to(sink, KmsKeyProvider(kms, "alias/dr-backups"), context) as w:
        w.write(data)                       # any number of times; constant memory
    reader = decrypt_from(source, provider, expected_context=context)
    for chunk in reader.chunks(): ...       # only authenticated plaintext, or IntegrityError

Key providers: `KmsKeyProvider` (KMS in the DR region, encryption context bound by KMS) and
`LocalKeyProvider` (a key file made by `generate_key_file`, for offline use).
"""

from dr.crypto.errors import IntegrityError
from dr.crypto.format import DEFAULT_CHUNK_SIZE, Header, canonical_context, read_header
from dr.crypto.keys import KeyProvider, KmsKeyProvider, LocalKeyProvider, generate_key_file
from dr.crypto.stream import DecryptingReader, EncryptingWriter, decrypt_from, encrypt_to

__all__ = [
    "DEFAULT_CHUNK_SIZE", "DecryptingReader", "EncryptingWriter", "Header", "IntegrityError",
    "KeyProvider", "KmsKeyProvider", "LocalKeyProvider", "canonical_context", "decrypt_from",
    "encrypt_to", "generate_key_file", "read_header",
]
