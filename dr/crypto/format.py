"""The dr encrypted file format, version 1: the header, the chunk records, the chunk nonces.

FORMAT.md (next to this file) documents every byte; this module is its executable form. Pure:
no keys, no I/O beyond reading a header from a stream.

    file   = header || chunk_0 || ... || chunk_n          (chunk_n is the final chunk)
    header = magic(8) || version u16 || body_len u32 || body
    body   = chunk_size u32 || kind u8 || nonce_prefix(7)
             || u16 len || key_id || u16 len || wrapped_key || u16 len || context JSON
    chunk  = n u32 || AES-256-GCM(data_key, nonce_i, plaintext(n), aad = header) (n + 16 bytes)
    nonce_i = nonce_prefix(7) || i u32 || last u8         last = 1 iff n < chunk_size
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dr.crypto.errors import IntegrityError
from dr.files import read_exactly

MAGIC = b"\x89DRENC\r\n"
VERSION = 1
PREAMBLE_LEN = 14  # magic(8) + version u16 + body_len u32
FIXED_BODY_LEN = 12  # chunk_size u32 + kind u8 + nonce_prefix(7)
NONCE_PREFIX_LEN = 7
TAG_LEN = 16
LENGTH_LEN = 4  # the u32 in front of every chunk
DATA_KEY_LEN = 32

DEFAULT_CHUNK_SIZE = 1 << 20
MIN_CHUNK_SIZE = 16
MAX_CHUNK_SIZE = 64 << 20
MAX_HEADER_BODY = 64 << 10
MAX_KEY_ID = 2048
MAX_WRAPPED_KEY = 6144  # the largest CiphertextBlob KMS returns
MAX_CONTEXT = 8192
MAX_CHUNKS = 1 << 32  # the chunk index is a u32

KIND_CODES = {"kms": 1, "local": 2}
KIND_NAMES = {code: name for name, code in KIND_CODES.items()}

DAMAGED = "backup file is damaged or was tampered with"


def canonical_context(context: Mapping[str, str]) -> bytes:
    """The encryption context as stored and authenticated: JSON, keys sorted, no spaces, UTF-8."""
    if not isinstance(context, Mapping):
        raise TypeError(f"the encryption context must be a mapping of str to str, got {context!r}")
    for k, v in context.items():
        if not isinstance(k, str) or not isinstance(v, str) or not k:
            raise ValueError(f"encryption context entries must be non-empty str keys with str "
                             f"values, got {k!r}: {v!r}")
    try:
        data = json.dumps(dict(context), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"the encryption context is not valid Unicode: {exc}") from None
    if len(data) > MAX_CONTEXT:
        raise ValueError(f"the encryption context is {len(data)} bytes; the limit is {MAX_CONTEXT}")
    return data


def context_text(context: Mapping[str, str]) -> str:
    """How a context appears in messages: the canonical JSON."""
    return json.dumps(dict(context), sort_keys=True, ensure_ascii=False)


def chunk_nonce(prefix: bytes, index: int, last: bool) -> bytes:
    """The 96-bit GCM nonce of chunk `index`: prefix(7) || index u32 BE || last u8."""
    return prefix + struct.pack(">IB", index, 1 if last else 0)


@dataclass(frozen=True)
class Header:
    """A parsed header. `raw` is its exact bytes: the AAD of every chunk."""

    version: int
    chunk_size: int
    kind: str  # "kms" | "local"
    key_id: str
    wrapped_key: bytes = field(repr=False)
    context: dict[str, str]
    nonce_prefix: bytes = field(repr=False)
    raw: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.raw)

    def nonce(self, index: int, last: bool) -> bytes:
        return chunk_nonce(self.nonce_prefix, index, last)

    def describe(self) -> dict[str, Any]:
        """What `dr` shows about a file: which key and context it needs."""
        return {"format_version": self.version, "chunk_size": self.chunk_size,
                "key_provider": self.kind, "key_id": self.key_id, "context": dict(self.context),
                "header_bytes": self.size}


def build_header(*, chunk_size: int, kind: str, key_id: str, wrapped_key: bytes,
                 context: Mapping[str, str], nonce_prefix: bytes) -> Header:
    """Encode a version-1 header; refuses anything a reader would reject."""
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk size {chunk_size} is outside {MIN_CHUNK_SIZE}..{MAX_CHUNK_SIZE}")
    if kind not in KIND_CODES:
        raise ValueError(f"unknown key provider type {kind!r}")
    key_id_bytes = key_id.encode("utf-8")
    if not 1 <= len(key_id_bytes) <= MAX_KEY_ID:
        raise ValueError(f"key id must be 1..{MAX_KEY_ID} bytes, got {len(key_id_bytes)}")
    if not 1 <= len(wrapped_key) <= MAX_WRAPPED_KEY:
        raise ValueError(f"wrapped key must be 1..{MAX_WRAPPED_KEY} bytes, got {len(wrapped_key)}")
    if len(nonce_prefix) != NONCE_PREFIX_LEN:
        raise ValueError(f"nonce prefix must be {NONCE_PREFIX_LEN} bytes")
    ctx = canonical_context(context)
    body = b"".join([
        struct.pack(">IB", chunk_size, KIND_CODES[kind]), bytes(nonce_prefix),
        struct.pack(">H", len(key_id_bytes)), key_id_bytes,
        struct.pack(">H", len(wrapped_key)), bytes(wrapped_key),
        struct.pack(">H", len(ctx)), ctx,
    ])
    raw = MAGIC + struct.pack(">HI", VERSION, len(body)) + body
    return Header(VERSION, chunk_size, kind, key_id, bytes(wrapped_key),
                  json.loads(ctx), bytes(nonce_prefix), raw)


def read_header(source) -> Header:
    """Read and parse the header at the start of `source`, leaving it positioned at chunk 0.

    Reads at most PREAMBLE_LEN + MAX_HEADER_BODY bytes whatever the file claims."""
    pre = read_exactly(source, PREAMBLE_LEN)
    if not pre:
        raise IntegrityError("not a dr encrypted file (it is empty)")
    if not (MAGIC.startswith(pre) if len(pre) < len(MAGIC) else pre.startswith(MAGIC)):
        raise IntegrityError("not a dr encrypted file (bad magic)",
                             hint="a dr encrypted file starts with the bytes "
                                  "89 44 52 45 4e 43 0d 0a")
    if len(pre) < PREAMBLE_LEN:
        raise IntegrityError(f"backup file is truncated: it ends inside the header, "
                             f"after {len(pre)} bytes")
    version, body_len = struct.unpack(">HI", pre[len(MAGIC):])
    if version != VERSION:
        raise IntegrityError(f"unsupported format version {version} (this dr reads version "
                             f"{VERSION})", hint="use the dr release that wrote the file, or "
                             "a newer one; if no dr writes this version, the file is damaged")
    if not FIXED_BODY_LEN + 6 <= body_len <= MAX_HEADER_BODY:
        raise IntegrityError(f"{DAMAGED}: the header claims {body_len} bytes, outside "
                             f"{FIXED_BODY_LEN + 6}..{MAX_HEADER_BODY}")
    body = read_exactly(source, body_len)
    if len(body) < body_len:
        raise IntegrityError(f"backup file is truncated: it ends inside the header, after "
                             f"{PREAMBLE_LEN + len(body)} of {PREAMBLE_LEN + body_len} bytes")
    return _parse_body(pre + body)


def parse_header(data: bytes) -> Header:
    """Parse a header from the start of `data` (bytes after the header are ignored)."""
    import io

    return read_header(io.BytesIO(data))


class _Cursor:
    def __init__(self, raw: bytes, pos: int):
        self.raw, self.pos = raw, pos

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.raw):
            raise IntegrityError(f"{DAMAGED}: the header ends inside the {what} (byte "
                                 f"{self.pos}, needs {n} bytes)")
        out = self.raw[self.pos:self.pos + n]
        self.pos += n
        return out

    def field(self, what: str, low: int, high: int) -> bytes:
        at = self.pos
        (n,) = struct.unpack(">H", self.take(2, f"length of the {what}"))
        if not low <= n <= high:
            raise IntegrityError(f"{DAMAGED}: the header's {what} length {n} (at byte {at}) is "
                                 f"outside {low}..{high}")
        return self.take(n, what)


def _parse_body(raw: bytes) -> Header:
    cur = _Cursor(raw, PREAMBLE_LEN)
    chunk_size, kind_code = struct.unpack(">IB", cur.take(5, "chunk size"))
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise IntegrityError(f"{DAMAGED}: the header's chunk size {chunk_size} is outside "
                             f"{MIN_CHUNK_SIZE}..{MAX_CHUNK_SIZE}")
    if kind_code not in KIND_NAMES:
        raise IntegrityError(f"{DAMAGED}: unsupported key provider type {kind_code} in the header "
                             f"(known: {', '.join(f'{c}={n}' for n, c in KIND_CODES.items())})")
    nonce_prefix = cur.take(NONCE_PREFIX_LEN, "nonce prefix")
    key_id_bytes = cur.field("key id", 1, MAX_KEY_ID)
    wrapped_key = cur.field("wrapped key", 1, MAX_WRAPPED_KEY)
    ctx_bytes = cur.field("encryption context", 2, MAX_CONTEXT)
    if cur.pos != len(raw):
        raise IntegrityError(f"{DAMAGED}: {len(raw) - cur.pos} unexpected bytes at the end of "
                             f"the header (bytes {cur.pos}-{len(raw) - 1})")
    try:
        key_id = key_id_bytes.decode("utf-8")
        context = json.loads(ctx_bytes.decode("utf-8"))
        canonical = canonical_context(context)
    except (UnicodeDecodeError, ValueError, TypeError):
        canonical = None
    if canonical is None or canonical != ctx_bytes:
        raise IntegrityError(f"{DAMAGED}: the header's key id or encryption context is not valid "
                             "(canonical JSON of strings, UTF-8)")
    return Header(VERSION, chunk_size, KIND_NAMES[kind_code], key_id, wrapped_key, context,
                  nonce_prefix, raw)
