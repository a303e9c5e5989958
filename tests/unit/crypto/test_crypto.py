"""dr.crypto with a local key file (no server): round trips, every attack, the key file."""

from __future__ import annotations

import io
import os
import random
import shutil
import stat
import struct
import tracemalloc

import pytest

from dr.crypto import (
    DecryptingReader, EncryptingWriter, IntegrityError, KeyProvider, LocalKeyProvider,
    decrypt_from, encrypt_to, generate_key_file, read_header,
)
from dr.crypto.format import (
    MAGIC, MAX_CHUNK_SIZE, MAX_HEADER_BODY, build_header, parse_header,
)
from dr.errors import ConfigError, DrError, UsageError

C = 16  # a tiny chunk size, so every boundary is cheap to reach
REC = 4 + C + 16  # the record of a full chunk
CTX = {"dr:backup": "office-lamp/20261126-1300", "dr:kind": "mysql"}


@pytest.fixture
def key(tmp_path) -> LocalKeyProvider:
    generate_key_file(tmp_path / "dr.key")
    return LocalKeyProvider(tmp_path / "dr.key")


@pytest.fixture
def other_key(tmp_path) -> LocalKeyProvider:
    generate_key_file(tmp_path / "other.key")
    return LocalKeyProvider(tmp_path / "other.key")


def encrypt(provider, data: bytes, *, chunk: int = C, context=CTX, writes=None) -> bytes:
    out = io.BytesIO()
    with encrypt_to(out, provider, context, chunk) as w:
        if writes is None:
            w.write(data)
        else:
            pos = 0
            for n in writes:
                w.write(data[pos:pos + n])
                pos += n
            w.write(data[pos:])
    assert w.bytes_in == len(data)
    assert w.bytes_out == len(out.getvalue())
    return out.getvalue()


def decrypt(provider, blob: bytes, context=CTX) -> bytes:
    return decrypt_from(io.BytesIO(blob), provider, context).read()


def records(blob: bytes) -> tuple[bytes, list[bytes]]:
    """(header bytes, [chunk record bytes, ...]) of a well-formed file."""
    h = parse_header(blob).size
    out, pos = [], h
    while pos < len(blob):
        (n,) = struct.unpack(">I", blob[pos:pos + 4])
        out.append(blob[pos:pos + 4 + n + 16])
        pos += 4 + n + 16
    return blob[:h], out


PLAIN = bytes(range(256)) * 4
SAMPLE = PLAIN[:40]  # chunks of 16, 16 and 8 bytes


# --- round trips --------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, C - 1, C, C + 1, 2 * C, 5 * C + 3, 7 * C])
def test_round_trip_sizes(key, size):
    data = os.urandom(size)
    blob = encrypt(key, data)
    assert decrypt(key, blob) == data
    hdr, recs = records(blob)
    assert len(recs) == size // C + 1  # full chunks, then a final chunk of size % C bytes
    assert len(blob) == len(hdr) + 20 * len(recs) + size


def test_round_trip_random_sizes_and_odd_writes(key):
    rng = random.Random(1)
    for _ in range(60):
        size = rng.randrange(0, 12 * C)
        data = rng.randbytes(size)
        writes = [rng.randrange(0, 2 * C + 3) for _ in range(rng.randrange(0, 10))]
        assert decrypt(key, encrypt(key, data, writes=writes)) == data


def test_round_trip_default_chunk_size_with_odd_writes(key):
    data = os.urandom((5 << 20) // 2 + 7)  # 2.5 MiB + 7: two full 1 MiB chunks and a rest
    out = io.BytesIO()
    with encrypt_to(out, key, CTX) as w:
        view, pos, step = memoryview(data), 0, 1
        while pos < len(data):
            w.write(view[pos:pos + step])
            pos += step
            step = step * 7 % 300_007 + 1
    assert w.chunks_written == 3
    reader = decrypt_from(io.BytesIO(out.getvalue()), key, CTX)
    assert reader.header.chunk_size == 1 << 20
    assert b"".join(reader.chunks()) == data


def test_writer_accepts_any_bytes_like(key):
    out = io.BytesIO()
    with encrypt_to(out, key, CTX, C) as w:
        assert w.write(b"ab") == 2
        assert w.write(bytearray(b"cd")) == 2
        assert w.write(memoryview(b"ef" * 20)) == 40
        assert w.write(b"") == 0
    assert decrypt(key, out.getvalue()) == b"abcd" + b"ef" * 20


def test_empty_plaintext_is_one_empty_final_chunk(key):
    blob = encrypt(key, b"")
    hdr, recs = records(blob)
    assert recs == [recs[0]] and len(recs[0]) == 20 and recs[0][:4] == b"\0\0\0\0"
    assert decrypt(key, blob) == b""
    assert list(decrypt_from(io.BytesIO(blob), key).chunks()) == []


def test_reader_is_a_file(key):
    data = os.urandom(10 * C + 5)
    blob = encrypt(key, data)
    r = decrypt_from(io.BytesIO(blob), key, CTX)
    assert r.read(0) == b""
    assert r.read(3) == data[:3]
    buf = bytearray(20)
    n = r.readinto(buf)
    assert buf[:n] == data[3:3 + n]
    assert r.read(-1) == data[3 + n:]
    assert r.read(5) == b""
    # it works with the io machinery too
    out = io.BytesIO()
    shutil.copyfileobj(io.BufferedReader(decrypt_from(io.BytesIO(blob), key)), out, 7)
    assert out.getvalue() == data


def test_mixing_read_and_chunks(key):
    data = os.urandom(3 * C + 4)
    r = decrypt_from(io.BytesIO(encrypt(key, data)), key)
    assert r.read(5) == data[:5]
    assert list(r.chunks()) == [data[5:C], data[C:2 * C], data[2 * C:3 * C], data[3 * C:]]


class Trickle(io.RawIOBase):
    """A pipe-like source: at most 7 bytes per read, and it records every request."""

    def __init__(self, data: bytes):
        self._src = io.BytesIO(data)
        self.requests: list[int] = []

    def readable(self):
        return True

    def read(self, n=-1):
        self.requests.append(n)
        return self._src.read(min(n, 7) if n >= 0 else 7)


class Dribble:
    """A sink that accepts at most 5 bytes per write call, like a non-blocking raw file."""

    def __init__(self):
        self.data = bytearray()

    def write(self, b):
        b = bytes(b[:5])
        self.data += b
        return len(b)


def test_short_reads_and_short_writes(key):
    data = os.urandom(4 * C + 9)
    sink = Dribble()
    with encrypt_to(sink, key, CTX, C) as w:
        w.write(data)
    src = Trickle(bytes(sink.data))
    reader = decrypt_from(src, key, CTX)
    assert max(src.requests) == reader.header.size - 14  # the header body, at most 64 KiB
    src.requests.clear()
    assert reader.read() == data
    assert max(src.requests) <= C + 16  # constant memory: never more than one chunk at a time


def test_header_is_readable_without_a_key(key):
    blob = encrypt(key, b"x" * 40)
    src = io.BytesIO(blob)
    h = read_header(src)
    assert (h.version, h.chunk_size, h.kind, h.key_id, h.context) == (1, C, "local", key.key_id,
                                                                       CTX)
    assert src.tell() == h.size and blob[:8] == MAGIC
    assert h.describe() == {"format_version": 1, "chunk_size": C, "key_provider": "local",
                            "key_id": key.key_id, "context": CTX, "header_bytes": h.size}
    assert decrypt_from(io.BytesIO(blob), key).header == h


def test_context_is_canonical_whatever_the_order(key):
    a = encrypt(key, b"", context={"b": "2", "a": "ü"})
    assert b'{"a":"\xc3\xbc","b":"2"}' in a
    assert decrypt(key, a, context={"a": "ü", "b": "2"}) == b""


def test_bad_arguments_are_refused(key):
    with pytest.raises(ValueError):
        encrypt_to(io.BytesIO(), key, CTX, chunk_size=15)
    with pytest.raises(ValueError):
        encrypt_to(io.BytesIO(), key, CTX, chunk_size=MAX_CHUNK_SIZE + 1)
    with pytest.raises(ValueError):
        encrypt_to(io.BytesIO(), key, {"dr:backup": 5})
    with pytest.raises(ValueError):
        encrypt_to(io.BytesIO(), key, {"": "x"})


def test_provider_protocol(key):
    assert isinstance(key, KeyProvider)
    assert key.kind == "local" and key.key_id.startswith("local:")


# --- the writer's life cycle --------------------------------------------------------------------

def test_close_seals_once_and_later_writes_fail(key):
    out = io.BytesIO()
    w = encrypt_to(out, key, CTX, C)
    assert isinstance(w, EncryptingWriter)
    w.write(b"abc")
    w.close()
    size = len(out.getvalue())
    w.close()  # a second close does nothing
    assert len(out.getvalue()) == size
    with pytest.raises(ValueError):
        w.write(b"more")
    assert decrypt(key, out.getvalue()) == b"abc"


def test_an_exception_in_the_with_block_leaves_no_final_chunk(key):
    out = io.BytesIO()
    with pytest.raises(RuntimeError):
        with encrypt_to(out, key, CTX, C) as w:
            w.write(b"x" * (2 * C + 3))
            raise RuntimeError("mysqldump died")
    with pytest.raises(IntegrityError, match="ends after chunk 1 .*without a final chunk"):
        decrypt(key, out.getvalue())


def test_a_failing_sink_poisons_the_writer(key):
    class Broken:
        calls = 0

        def write(self, b):
            Broken.calls += 1
            if Broken.calls > 2:  # header, then the first length: fails on the first chunk body
                raise OSError("disk full")
            return len(b)

    w = encrypt_to(Broken(), key, CTX, C)
    with pytest.raises(OSError):
        w.write(b"y" * C)
    w.close()  # must not seal a final chunk after half a chunk
    assert Broken.calls == 3


# --- attacks ------------------------------------------------------------------------------------

def test_every_flipped_byte_is_detected(key):
    blob = encrypt(key, SAMPLE)
    assert len(records(blob)[1]) == 3
    for pos in range(len(blob)):
        for mask in (0x01, 0x80, 0xFF):
            bad = bytearray(blob)
            bad[pos] ^= mask
            for ctx in (CTX, None):
                with pytest.raises(IntegrityError):
                    decrypt(key, bytes(bad), ctx)


def test_flipped_bytes_in_chunks_name_the_chunk_and_its_bytes(key):
    blob = encrypt(key, SAMPLE)
    hdr, recs = records(blob)
    start = len(hdr)
    for i, rec in enumerate(recs):
        end = start + len(rec) - 1
        for offset in range(4, len(rec)):  # the ciphertext and the tag
            bad = bytearray(blob)
            bad[start + offset] ^= 0x40
            with pytest.raises(IntegrityError, match=(
                    rf"^backup file is damaged or was tampered with: chunk {i} "
                    rf"\(bytes {start}-{end} of the file\) failed authentication")):
                decrypt(key, bytes(bad))
        start = end + 1


def test_flipped_header_bytes(key):
    blob = encrypt(key, SAMPLE)
    h = parse_header(blob)

    def flipped(pos, mask=0x01):
        bad = bytearray(blob)
        bad[pos] ^= mask
        return bytes(bad)

    with pytest.raises(IntegrityError, match=r"not a dr encrypted file \(bad magic\)"):
        decrypt(key, flipped(0))
    with pytest.raises(IntegrityError, match="unsupported format version 9"):
        decrypt(key, blob[:8] + b"\x00\x09" + blob[10:])
    with pytest.raises(IntegrityError, match="chunk 0 .* failed authentication .*header"):
        decrypt(key, flipped(19))  # the nonce prefix
    with pytest.raises(IntegrityError, match="chunk 0 .* failed authentication .*header"):
        decrypt(key, flipped(17, 0x20))  # chunk size 16 -> 48: only chunk 0's tag notices
    with pytest.raises(IntegrityError, match="unsupported key provider type 3"):
        decrypt(key, flipped(18))
    with pytest.raises(IntegrityError, match="this file was encrypted with local key"):
        decrypt(key, flipped(40))  # inside the key id
    wrapped_at = 14 + 12 + 2 + len(h.key_id) + 2
    assert blob[wrapped_at:wrapped_at + len(h.wrapped_key)] == h.wrapped_key
    with pytest.raises(IntegrityError, match="does not unwrap with local key"):
        decrypt(key, flipped(wrapped_at + 20))  # inside the wrapped key
    with pytest.raises(IntegrityError, match="encryption context does not match"):
        decrypt(key, flipped(h.size - 3))  # inside the context, with a context expected
    with pytest.raises(IntegrityError, match="does not unwrap with local key"):
        decrypt(key, flipped(h.size - 3), context=None)  # ... and without one


def test_truncation_at_every_length(key):
    blob = encrypt(key, SAMPLE)
    hdr, recs = records(blob)
    boundaries = {len(hdr) + i * REC: i for i in range(len(recs))}
    for n in range(len(blob)):
        with pytest.raises(IntegrityError) as err:
            decrypt(key, blob[:n])
        msg = str(err.value)
        if n == 0:
            assert msg == "not a dr encrypted file (it is empty)"
        elif n < len(hdr):
            assert msg.startswith("backup file is truncated: it ends inside the header"), msg
        elif n == len(hdr):
            assert "ends after the header, before chunk 0" in msg
        elif n in boundaries:
            assert f"ends after chunk {boundaries[n] - 1} (at byte {n}) without a final chunk" \
                   in msg
        else:
            assert msg.startswith("backup file is truncated: "), msg


def test_missing_final_chunk(key):
    for data in (PLAIN[:2 * C], PLAIN[:2 * C + 5]):  # an empty and a non-empty final chunk
        hdr, recs = records(encrypt(key, data))
        assert len(recs) == 3
        with pytest.raises(IntegrityError, match=(
                r"^backup file is truncated: it ends after chunk 1 \(at byte \d+\) "
                r"without a final chunk$")):
            decrypt(key, hdr + recs[0] + recs[1])


def test_full_chunk_cannot_pose_as_final_by_editing_its_length(key):
    hdr, recs = records(encrypt(key, PLAIN[:2 * C]))
    shortened = struct.pack(">I", C - 1) + recs[1][4:-1]  # "final" and one byte shorter
    with pytest.raises(IntegrityError, match="chunk 1 .* failed authentication"):
        decrypt(key, hdr + recs[0] + shortened)


def test_swapped_duplicated_and_dropped_chunks(key):
    hdr, recs = records(encrypt(key, PLAIN[:4 * C + 3]))
    r0, r1, r2, r3, fin = recs
    cases = {
        "swap 0,1": (hdr + r1 + r0 + r2 + r3 + fin, 0),
        "swap 2,3": (hdr + r0 + r1 + r3 + r2 + fin, 2),
        "duplicate 1": (hdr + r0 + r1 + r1 + r2 + r3 + fin, 2),
        "drop 2": (hdr + r0 + r1 + r3 + fin, 2),
        "final moved up": (hdr + r0 + fin + r1 + r2 + r3, 1),
    }
    for name, (blob, bad_index) in cases.items():
        with pytest.raises(IntegrityError, match=f"chunk {bad_index} .*failed authentication"):
            decrypt(key, blob)


def test_chunk_from_another_file_with_the_same_key_and_context(key):
    hdr_a, recs_a = records(encrypt(key, PLAIN[:2 * C]))
    hdr_b, recs_b = records(encrypt(key, PLAIN[:2 * C]))
    with pytest.raises(IntegrityError, match="chunk 1 .*failed authentication"):
        decrypt(key, hdr_a + recs_a[0] + recs_b[1] + recs_a[2])
    with pytest.raises(IntegrityError, match="chunk 0 .*failed authentication"):
        decrypt(key, hdr_b + b"".join(recs_a))


def test_data_after_the_final_chunk(key):
    blob = encrypt(key, SAMPLE)
    hdr, recs = records(blob)
    for extra in (b"\0", b"junk" * 100, recs[-1], encrypt(key, b"")):
        with pytest.raises(IntegrityError, match=(
                rf"data after the final chunk \(chunk 2 ends at byte {len(blob) - 1}")):
            decrypt(key, blob + extra)


def test_absurd_chunk_length(key):
    hdr, recs = records(encrypt(key, SAMPLE))
    bad = hdr + struct.pack(">I", 0xFFFFFFFF) + recs[0][4:]
    with pytest.raises(IntegrityError, match=(
            rf"chunk 0 \(at byte {len(hdr)}\) claims 4294967295 bytes, more than the chunk "
            rf"size {C}")):
        decrypt(key, bad)


def test_wrong_key_file(key, other_key):
    blob = encrypt(key, SAMPLE)
    with pytest.raises(IntegrityError, match=(
            rf"^this file was encrypted with local key {key.key_id}; the key provided is "
            rf"local key {other_key.key_id}")):
        decrypt(other_key, blob)


def test_forged_key_id_fails_the_unwrap(key, other_key):
    blob = encrypt(key, SAMPLE)
    h = parse_header(blob)
    forged = build_header(chunk_size=C, kind="local", key_id=other_key.key_id,
                          wrapped_key=h.wrapped_key, context=h.context, nonce_prefix=h.nonce_prefix)
    with pytest.raises(IntegrityError, match="does not unwrap with local key"):
        decrypt(other_key, forged.raw + blob[h.size:])


def test_wrong_context(key):
    blob = encrypt(key, SAMPLE)
    other = {"dr:backup": "office-lamp/20261126-1400", "dr:kind": "mysql"}
    with pytest.raises(IntegrityError) as err:
        decrypt(key, blob, context=other)
    assert str(err.value).startswith(
        'the encryption context does not match: expected {"dr:backup": '
        '"office-lamp/20261126-1400", "dr:kind": "mysql"}, the file says {"dr:backup": '
        '"office-lamp/20261126-1300", "dr:kind": "mysql"}')


def test_forged_context_in_the_header_fails_the_unwrap(key):
    """Rewriting the header's context to the one the restore expects does not help."""
    blob = encrypt(key, SAMPLE)
    h = parse_header(blob)
    other = {"dr:backup": "office-lamp/20261126-1400", "dr:kind": "mysql"}
    forged = build_header(chunk_size=C, kind="local", key_id=h.key_id, wrapped_key=h.wrapped_key,
                          context=other, nonce_prefix=h.nonce_prefix)
    with pytest.raises(IntegrityError, match="does not unwrap"):
        decrypt(key, forged.raw + blob[h.size:], context=other)


# --- never release unauthenticated plaintext ----------------------------------------------------

def corrupt_chunk(blob: bytes, index: int) -> bytes:
    hdr, recs = records(blob)
    at = len(hdr) + sum(len(r) for r in recs[:index]) + 10
    bad = bytearray(blob)
    bad[at] ^= 1
    return bytes(bad)


def test_reader_returns_exactly_the_verified_chunks_then_raises(key):
    data = PLAIN[:3 * C + 5]
    bad = corrupt_chunk(encrypt(key, data), 1)

    r = decrypt_from(io.BytesIO(bad), key, CTX)
    assert r.read(1000) == data[:C]  # all of chunk 0, nothing of chunk 1
    with pytest.raises(IntegrityError, match="chunk 1"):
        r.read(1000)
    with pytest.raises(IntegrityError, match="chunk 1"):  # and it stays failed
        r.read(1)

    r = decrypt_from(io.BytesIO(bad), key, CTX)
    got = []
    with pytest.raises(IntegrityError, match="chunk 1"):
        for chunk in r.chunks():
            got.append(chunk)
    assert got == [data[:C]]

    r = decrypt_from(io.BytesIO(bad), key, CTX)
    buf = bytearray(3 * C)
    assert r.readinto(buf) == C and bytes(buf[:C]) == data[:C]
    with pytest.raises(IntegrityError):
        r.readinto(buf)

    with pytest.raises(IntegrityError):  # read() of everything returns nothing at all
        decrypt_from(io.BytesIO(bad), key, CTX).read()


def test_final_chunk_is_released_only_once_nothing_follows(key):
    data = PLAIN[:2 * C + 5]
    blob = encrypt(key, data) + b"!"
    r = decrypt_from(io.BytesIO(blob), key, CTX)
    assert r.read(C) == data[:C] and r.read(C) == data[C:2 * C]
    with pytest.raises(IntegrityError, match="data after the final chunk"):
        r.read(C)


def test_end_of_plaintext_is_reported_only_after_the_final_chunk(key):
    data = PLAIN[:2 * C]
    hdr, recs = records(encrypt(key, data))
    r = decrypt_from(io.BytesIO(hdr + recs[0] + recs[1]), key, CTX)
    assert r.read(C) == data[:C] and r.read(C) == data[C:]
    with pytest.raises(IntegrityError, match="without a final chunk"):
        r.read(C)  # not b"": a truncated file never looks complete


# --- hostile headers ----------------------------------------------------------------------------

class Recording(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.requests = []

    def read(self, n=-1):
        self.requests.append(n)
        return super().read(n)


def preamble(version=1, body_len=100) -> bytes:
    return MAGIC + struct.pack(">HI", version, body_len)


@pytest.mark.parametrize("body_len", [0, 5, MAX_HEADER_BODY + 1, 0xFFFFFFFF])
def test_absurd_header_length_is_rejected_before_reading(key, body_len):
    src = Recording(preamble(body_len=body_len) + b"\0" * 1000)
    tracemalloc.start()
    try:
        with pytest.raises(IntegrityError, match=f"the header claims {body_len} bytes"):
            read_header(src)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert src.requests == [14]
    assert peak < 100_000


def header_body(chunk_size=C, kind=2, key_id=b"local:00", wrapped=b"w" * 61,
                context=b'{"a":"1"}', lengths=None) -> bytes:
    kl, wl, cl = lengths or (len(key_id), len(wrapped), len(context))
    return (struct.pack(">IB", chunk_size, kind) + b"p" * 7 + struct.pack(">H", kl) + key_id
            + struct.pack(">H", wl) + wrapped + struct.pack(">H", cl) + context)


@pytest.mark.parametrize("body,message", [
    (header_body(chunk_size=0xFFFFFFFF), "chunk size 4294967295 is outside 16..67108864"),
    (header_body(chunk_size=15), "chunk size 15 is outside"),
    (header_body(kind=9), "unsupported key provider type 9"),
    (header_body(lengths=(0xFFFF, 61, 9)), "key id length 65535 .* is outside 1..2048"),
    (header_body(lengths=(0, 61, 9)), "key id length 0"),
    (header_body(lengths=(8, 0xFFFF, 9)), "wrapped key length 65535 .* is outside 1..6144"),
    (header_body(lengths=(8, 61, 0xFFFF)), "encryption context length 65535 .* outside 2..8192"),
    (header_body(lengths=(8, 61, 50)), "the header ends inside the encryption context"),
    (header_body() + b"xx", "2 unexpected bytes at the end of the header"),
    (header_body(context=b'{"a":1}'), "not valid"),
    (header_body(context=b'["a","1"]'), "not valid"),
    (header_body(context=b'{"a":"1","a":"2"}'), "not valid"),
    (header_body(context=b'{"b":"1","a":"2"}'), "not valid"),
    (header_body(context=b'{"a":"\xff"}'), "not valid"),
    (header_body(context=b'{"a": "1"}'), "not valid"),
    (header_body(context=b'{"a":"\\u0031"}'), "not valid"),
    (header_body(key_id=b"local:\xff\xfe"), "not valid"),
])
def test_hostile_header_fields(body, message):
    with pytest.raises(IntegrityError, match=message):
        parse_header(preamble(body_len=len(body)) + body)


def test_a_plausible_hostile_header_parses_but_goes_nowhere(key):
    body = header_body(key_id=key.key_id.encode())
    h = parse_header(preamble(body_len=len(body)) + body)
    assert h.context == {"a": "1"}
    with pytest.raises(IntegrityError, match="malformed|does not unwrap"):
        decrypt(key, h.raw, context=None)


def test_not_a_dr_file(key):
    for blob in (b"-- MySQL dump 10.13\n" * 10, b"\x89DRENX\r\n" + b"\0" * 100, b"\x89Dx"):
        with pytest.raises(IntegrityError, match=r"^not a dr encrypted file \(bad magic\)"):
            decrypt(key, blob)
    err = IntegrityError("x")
    assert isinstance(err, DrError) and err.exit_code == 1


# --- the key file -------------------------------------------------------------------------------

def test_key_file_is_private_and_never_overwritten(tmp_path, capsys):
    old = os.umask(0)
    try:
        key_id = generate_key_file(tmp_path / "k")
    finally:
        os.umask(old)
    path = tmp_path / "k"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key_id == LocalKeyProvider(path).key_id
    assert key_id.startswith("local:") and len(key_id) == 6 + 32
    text = path.read_text()
    assert text.startswith("dr-local-key-v1\n") and f"# key id: {key_id}\n" in text
    with pytest.raises(UsageError, match="already exists; dr never overwrites a key file"):
        generate_key_file(path)
    assert path.read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]  # no temporary files left
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert generate_key_file(tmp_path / "k2") != key_id  # random every time


def test_key_file_refuses_a_dangling_symlink(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    with pytest.raises(UsageError, match="already exists"):
        generate_key_file(tmp_path / "link")
    assert not (tmp_path / "nowhere").exists()


def test_key_never_appears_in_repr_str_or_attributes(tmp_path):
    import base64

    generate_key_file(tmp_path / "k")
    b64 = [line for line in (tmp_path / "k").read_text().splitlines()
           if line and not line.startswith(("#", "dr-"))][0]
    raw = base64.b64decode(b64)
    provider = LocalKeyProvider(tmp_path / "k")
    shown = repr(provider) + str(provider) + repr(vars(provider))
    assert b64 not in shown and raw.hex() not in shown and repr(raw) not in shown
    assert all(raw != v for v in vars(provider).values())
    with pytest.raises(TypeError):
        import pickle
        pickle.dumps(provider)


def test_keys_from_the_same_file_agree(tmp_path):
    generate_key_file(tmp_path / "k")
    a, b = LocalKeyProvider(tmp_path / "k"), LocalKeyProvider(tmp_path / "k")
    assert decrypt(b, encrypt(a, SAMPLE)) == SAMPLE


@pytest.mark.parametrize("text,message", [
    ("", "not a dr local key file"),
    ("-----BEGIN PRIVATE KEY-----\n", "not a dr local key file"),
    ("dr-local-key-v1\n", "not 32 bytes of base64"),
    ("dr-local-key-v1\nAAAA\n", "not 32 bytes of base64"),
    ("dr-local-key-v1\n" + "A" * 43 + "!\n", "not 32 bytes of base64"),
    ("dr-local-key-v1\n" + "A" * 43 + "=\n" + "A" * 43 + "=\n", "not 32 bytes of base64"),
])
def test_malformed_key_files(tmp_path, text, message):
    (tmp_path / "k").write_text(text)
    with pytest.raises(ConfigError, match=message):
        LocalKeyProvider(tmp_path / "k")


def test_missing_key_file(tmp_path):
    with pytest.raises(ConfigError, match="not found") as err:
        LocalKeyProvider(tmp_path / "absent.key")
    assert "dr keygen" in str(err.value)


def test_reader_repr_is_harmless(key):
    r = decrypt_from(io.BytesIO(encrypt(key, SAMPLE)), key)
    assert isinstance(r, DecryptingReader) and key.key_id in repr(r)
