"""Streaming encryption and decryption: constant memory (about two chunks), any binary sink/source.

The writer seals a chunk as soon as `chunk_size` plaintext bytes are buffered; `close()` seals
the remainder (0..chunk_size-1 bytes) as the final chunk. The reader verifies each chunk before
returning a single byte of it, and reports what is wrong and where.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dr.crypto.errors import IntegrityError
from dr.crypto.format import (
    DAMAGED, DATA_KEY_LEN, DEFAULT_CHUNK_SIZE, LENGTH_LEN, MAX_CHUNKS, NONCE_PREFIX_LEN, TAG_LEN,
    Header, build_header, canonical_context, context_text, read_header,
)
from dr.crypto.keys import KeyProvider, key_mismatch
from dr.files import read_exactly

_U32 = struct.Struct(">I")


def _write_all(sink, data) -> None:
    view = memoryview(data)
    while view:
        n = sink.write(view)
        if n is None or n >= len(view):
            return
        view = view[n:]


class EncryptingWriter:
    """A write-only binary stream that encrypts into `sink`.

    `close()` seals the final chunk; until it is called the output is a truncated file that no
    reader accepts. Leaving a `with` block by an exception calls `abort()` instead, so a failed
    backup can never pass for a complete one. The sink is never closed by the writer."""

    def __init__(self, sink, header: Header, data_key: bytes):
        if len(data_key) != DATA_KEY_LEN:
            raise ValueError(f"a data key is {DATA_KEY_LEN} bytes, got {len(data_key)}")
        self.header = header
        self._sink = sink
        self._aead = AESGCM(data_key)
        self._aad = header.raw
        self._size = header.chunk_size
        self._buf = bytearray(self._size)
        self._fill = 0
        self._index = 0
        self.closed = False
        self.bytes_in = 0
        self.bytes_out = 0
        _write_all(sink, header.raw)
        self.bytes_out = header.size

    def __repr__(self) -> str:
        return (f"EncryptingWriter(key_id={self.header.key_id!r}, bytes_in={self.bytes_in}, "
                f"bytes_out={self.bytes_out}, closed={self.closed})")

    @property
    def chunks_written(self) -> int:
        return self._index

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        """Chunks go to the sink whole; buffered plaintext stays here until its chunk is full."""

    def write(self, data) -> int:
        if self.closed:
            raise ValueError("write to a closed EncryptingWriter")
        try:
            return self._write(data)
        except BaseException:
            self.abort()  # the sink may hold half a chunk: never seal a final chunk after it
            raise

    def _write(self, data) -> int:
        view = memoryview(data).cast("B")
        total = len(view)
        size = self._size
        pos = 0
        if self._fill:
            take = min(size - self._fill, total)
            self._buf[self._fill:self._fill + take] = view[:take]
            self._fill += take
            pos = take
            if self._fill == size:
                self._seal(self._buf, last=False)
                self._fill = 0
        while total - pos >= size:  # whole chunks straight from the caller's buffer
            self._seal(view[pos:pos + size], last=False)
            pos += size
        if pos < total:
            rest = total - pos
            self._buf[:rest] = view[pos:]
            self._fill = rest
        self.bytes_in += total
        return total

    def _seal(self, plaintext, last: bool) -> None:
        if self._index >= MAX_CHUNKS:
            raise ValueError(f"more than {MAX_CHUNKS} chunks: use a larger chunk size")
        sealed = self._aead.encrypt(self.header.nonce(self._index, last), plaintext, self._aad)
        _write_all(self._sink, _U32.pack(len(sealed) - TAG_LEN))
        _write_all(self._sink, sealed)
        self._index += 1
        self.bytes_out += LENGTH_LEN + len(sealed)

    def close(self) -> None:
        """Seal the final chunk (the buffered rest, possibly empty). Later calls do nothing."""
        if self.closed:
            return
        try:
            self._seal(memoryview(self._buf)[:self._fill], last=True)
        finally:
            self.abort()

    def abort(self) -> None:
        """Stop without a final chunk: the output stays an incomplete file that fails to decrypt."""
        self.closed = True
        self._fill = 0

    def __enter__(self) -> EncryptingWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def encrypt_to(sink, provider: KeyProvider, context: Mapping[str, str],
               chunk_size: int = DEFAULT_CHUNK_SIZE) -> EncryptingWriter:
    """Start an encrypted file in `sink` (anything with .write): writes the header now, returns
    the writer to stream plaintext into. A fresh data key per file, wrapped by `provider` under
    `context` (e.g. {"dr:backup": "office-lamp/20261126-1300", "dr:kind": "mysql"})."""
    return _encrypt_to(sink, provider, context, chunk_size)


def _encrypt_to(sink, provider: KeyProvider, context: Mapping[str, str], chunk_size: int, *,
                _data_key: bytes | None = None, _wrapped_key: bytes | None = None,
                _nonce_prefix: bytes | None = None) -> EncryptingWriter:
    """encrypt_to with test hooks: a fixed data key (with its wrapped form) and nonce prefix,
    for the test vector in FORMAT.md only. Production code never passes them."""
    canonical_context(context)
    if _data_key is None:
        data_key, wrapped = provider.new_data_key(context)
    else:
        if _wrapped_key is None:
            raise ValueError("_data_key needs its _wrapped_key")
        data_key, wrapped = _data_key, _wrapped_key
    header = build_header(
        chunk_size=chunk_size, kind=provider.kind, key_id=provider.key_id, wrapped_key=wrapped,
        context=context,
        nonce_prefix=_nonce_prefix if _nonce_prefix is not None else os.urandom(NONCE_PREFIX_LEN))
    return EncryptingWriter(sink, header, data_key)


class DecryptingReader(io.RawIOBase):
    """A read-only binary stream of the verified plaintext of an encrypted file.

    No byte of a chunk is returned before the whole chunk is authenticated; the end of the
    plaintext is reported only after the final chunk is verified and nothing follows it. Any
    failure raises IntegrityError, and every later read raises it again."""

    def __init__(self, source, provider: KeyProvider,
                 expected_context: Mapping[str, str] | None = None):
        super().__init__()
        self._source = source
        self.header = header = read_header(source)
        if header.kind != provider.kind or header.key_id != provider.key_id:
            raise key_mismatch(header.kind, header.key_id, provider)
        if expected_context is not None and \
                canonical_context(expected_context) != canonical_context(header.context):
            raise IntegrityError(
                f"the encryption context does not match: expected "
                f"{context_text(expected_context)}, the file says {context_text(header.context)}",
                hint="this is a different backup than the one asked for (or its header was "
                     "changed)")
        self._aead = AESGCM(provider.unwrap(header.wrapped_key, header.key_id, header.context))
        self._index = 0
        self._offset = header.size  # file offset of the next chunk record
        self._done = False
        self._error: IntegrityError | None = None
        self._cur = b""
        self._pos = 0
        self.bytes_in = header.size
        self.bytes_out = 0

    def __repr__(self) -> str:
        return (f"DecryptingReader(key_id={self.header.key_id!r}, chunks_verified={self._index}, "
                f"bytes_out={self.bytes_out})")

    def readable(self) -> bool:
        return True

    # --- chunk by chunk ---------------------------------------------------------------------

    def _fail(self, message: str) -> IntegrityError:
        self._error = IntegrityError(message)
        self._cur, self._pos = b"", 0
        return self._error

    def _next_chunk(self) -> bytes | None:
        """The verified plaintext of the next chunk, or None after the final one."""
        if self._error is not None:
            raise self._error
        if self._done:
            return None
        index, start, size = self._index, self._offset, self.header.chunk_size
        prefix = read_exactly(self._source, LENGTH_LEN)
        if len(prefix) < LENGTH_LEN:
            if not prefix and index == 0:
                raise self._fail("backup file is truncated: it ends after the header, before "
                                 "chunk 0")
            if not prefix:
                raise self._fail(f"backup file is truncated: it ends after chunk {index - 1} "
                                 f"(at byte {start}) without a final chunk")
            raise self._fail(f"backup file is truncated: it ends inside the length of chunk "
                             f"{index} (at byte {start + len(prefix)})")
        (n,) = _U32.unpack(prefix)
        if n > size:
            raise self._fail(f"{DAMAGED}: chunk {index} (at byte {start}) claims {n} bytes, "
                             f"more than the chunk size {size}")
        end = start + LENGTH_LEN + n + TAG_LEN  # exclusive
        sealed = read_exactly(self._source, n + TAG_LEN)
        if len(sealed) < n + TAG_LEN:
            cut = start + LENGTH_LEN + len(sealed)
            raise self._fail(f"backup file is truncated: chunk {index} (bytes {start}-{end - 1} "
                             f"of the file) is cut short at byte {cut}")
        last = n < size
        try:
            plaintext = self._aead.decrypt(self.header.nonce(index, last), sealed, self.header.raw)
        except InvalidTag:
            where = " (the header or this chunk was changed)" if index == 0 else ""
            raise self._fail(f"{DAMAGED}: chunk {index} (bytes {start}-{end - 1} of the file) "
                             f"failed authentication{where}") from None
        if last:
            extra = self._source.read(1)
            if extra:
                raise self._fail(f"{DAMAGED}: data after the final chunk (chunk {index} ends at "
                                 f"byte {end - 1}; the file goes on)")
            self._done = True
        self._index += 1
        self._offset = end
        self.bytes_in = end
        self.bytes_out += n
        return plaintext

    def chunks(self) -> Iterator[bytes]:
        """The verified plaintext chunk by chunk (after anything left of a partly read chunk)."""
        if self._pos < len(self._cur):
            rest = self._cur[self._pos:]
            self._cur, self._pos = b"", 0
            yield rest
        while (chunk := self._next_chunk()) is not None:
            if chunk:
                yield chunk

    # --- file-like ---------------------------------------------------------------------------

    def _fill(self) -> bool:
        while self._pos >= len(self._cur):
            chunk = self._next_chunk()
            if chunk is None:
                return False
            self._cur, self._pos = chunk, 0
        return True

    def read(self, n: int | None = -1) -> bytes:
        self._check_open()
        if n is None or n < 0:
            return b"".join(self.chunks())
        if n == 0 or not self._fill():
            return b""
        if self._pos == 0 and n >= len(self._cur):  # a whole chunk: no copy
            out, self._cur = self._cur, b""
            return out
        out = self._cur[self._pos:self._pos + n]
        self._pos += len(out)
        return out

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer) -> int:
        self._check_open()
        view = memoryview(buffer).cast("B")
        if not len(view) or not self._fill():
            return 0
        take = min(len(view), len(self._cur) - self._pos)
        view[:take] = memoryview(self._cur)[self._pos:self._pos + take]
        self._pos += take
        return take

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("read from a closed DecryptingReader")


def decrypt_from(source, provider: KeyProvider,
                 expected_context: Mapping[str, str] | None = None) -> DecryptingReader:
    """Open an encrypted file from `source` (anything with .read). Reads and checks the header
    and unwraps the data key now, so a wrong key or context fails before any data is read."""
    return DecryptingReader(source, provider, expected_context)
