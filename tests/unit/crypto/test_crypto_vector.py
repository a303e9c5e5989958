"""The test vector in dr/crypto/FORMAT.md: dr decodes it, reproduces it byte for byte, and an
independent decoder written from FORMAT.md alone (not from dr's code) decodes it too."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import dr.crypto
from dr.crypto import IntegrityError, LocalKeyProvider, decrypt_from, read_header
from dr.crypto.stream import _encrypt_to

FORMAT_MD = Path(dr.crypto.__file__).with_name("FORMAT.md")


def fenced(text: str, tag: str) -> str:
    blocks = re.findall(rf"^```{re.escape(tag)}\n(.*?)^```$", text, re.S | re.M)
    assert len(blocks) == 1, f"FORMAT.md must hold exactly one ```{tag} block"
    return blocks[0]


@pytest.fixture(scope="module")
def vector() -> dict:
    text = FORMAT_MD.read_text(encoding="utf-8")
    fields = {}
    for line in fenced(text, "test-vector").splitlines():
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    hexfile = "".join(fenced(text, "test-vector-file").split())
    v = {
        "key": bytes.fromhex(fields["local-key"]),
        "key_id": fields["key-id"],
        "data_key": bytes.fromhex(fields["data-key"]),
        "wrap_nonce": bytes.fromhex(fields["wrap-nonce"]),
        "nonce_prefix": bytes.fromhex(fields["nonce-prefix"]),
        "chunk_size": int(fields["chunk-size"]),
        "context": json.loads(fields["context"]),
        "context_bytes": fields["context"].encode("utf-8"),
        "plaintext": bytes.fromhex(fields["plaintext"]),
        "file": bytes.fromhex(hexfile),
    }
    assert fields["plaintext-utf8"].encode().decode("unicode_escape").encode() == v["plaintext"]
    key_file = fenced(text, "test-vector-key-file").splitlines()
    assert key_file[0] == "dr-local-key-v1"
    assert base64.b64decode(key_file[1]) == v["key"]
    v["key_file"] = "\n".join(key_file) + "\n"
    return v


@pytest.fixture
def provider(vector, tmp_path) -> LocalKeyProvider:
    path = tmp_path / "vector.key"
    path.write_text(vector["key_file"])  # the key file exactly as FORMAT.md shows it
    return LocalKeyProvider(path)


def test_dr_decodes_the_vector(vector, provider):
    assert provider.key_id == vector["key_id"]
    header = read_header(io.BytesIO(vector["file"]))
    assert (header.version, header.kind, header.key_id, header.chunk_size, header.context) == \
        (1, "local", vector["key_id"], vector["chunk_size"], vector["context"])
    reader = decrypt_from(io.BytesIO(vector["file"]), provider, vector["context"])
    chunks = list(reader.chunks())
    assert b"".join(chunks) == vector["plaintext"]
    assert len(chunks) >= 2


def test_dr_reproduces_the_vector(vector, provider):
    wrapped = provider._wrap(vector["data_key"], vector["context"], _nonce=vector["wrap_nonce"])
    out = io.BytesIO()
    with _encrypt_to(out, provider, vector["context"], vector["chunk_size"],
                     _data_key=vector["data_key"], _wrapped_key=wrapped,
                     _nonce_prefix=vector["nonce_prefix"]) as w:
        w.write(vector["plaintext"])
    assert out.getvalue().hex() == vector["file"].hex()


def test_the_vector_tampered_fails(vector, provider):
    bad = bytearray(vector["file"])
    bad[-1] ^= 1
    with pytest.raises(IntegrityError):
        decrypt_from(io.BytesIO(bytes(bad)), provider).read()


def independent_decode(blob: bytes, key: bytes) -> tuple[bytes, dict]:
    """FORMAT.md sections 1, 2 and 4, implemented from the text with nothing from dr."""
    assert blob[:8] == bytes.fromhex("894452454e430d0a")
    version, body_len = struct.unpack(">HI", blob[8:14])
    assert version == 1
    h = 14 + body_len
    chunk_size, kind = struct.unpack(">IB", blob[14:19])
    prefix = blob[19:26]
    pos = 26
    fields = []
    for _ in range(3):
        (n,) = struct.unpack(">H", blob[pos:pos + 2])
        fields.append(blob[pos + 2:pos + 2 + n])
        pos += 2 + n
    assert pos == h and kind == 2
    key_id, wrapped, context = fields
    digest = hashlib.sha256(b"dr-local-key-id-v1\x00" + key).hexdigest()[:32]
    assert key_id == f"local:{digest}".encode()
    assert wrapped[0] == 1 and len(wrapped) == 61
    data_key = AESGCM(key).decrypt(wrapped[1:13], wrapped[13:], b"dr-local-wrap-v1\x00" + context)
    aead, header = AESGCM(data_key), blob[:h]
    plain, i, pos, final = [], 0, h, False
    while pos < len(blob):
        assert not final
        (n,) = struct.unpack(">I", blob[pos:pos + 4])
        final = n < chunk_size
        nonce = prefix + struct.pack(">I", i) + (b"\x01" if final else b"\x00")
        plain.append(aead.decrypt(nonce, blob[pos + 4:pos + 4 + n + 16], header))
        pos += 4 + n + 16
        i += 1
    assert final and pos == len(blob)
    return b"".join(plain), json.loads(context)


def test_an_independent_decoder_agrees(vector):
    plaintext, context = independent_decode(vector["file"], vector["key"])
    assert plaintext == vector["plaintext"]
    assert context == vector["context"]
    assert vector["context_bytes"] in vector["file"]  # stored in canonical form, as shown
