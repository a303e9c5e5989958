"""Benchmark dr.crypto: encrypt and decrypt 256 MiB in memory, best of 3, MB/s.

Run from the repo root: `python benchmarks/crypto_bench.py [MiB]` (default 256).
The plaintext is 1 MiB of os.urandom repeated (cheap to make, incompressible per chunk). Encryption
writes into a null sink (counts bytes, keeps nothing); decryption reads the ciphertext from an
in-memory buffer and drops the plaintext. Written in 1 MiB pieces (a whole chunk per write, the
zero-copy path) and in 64 KiB pieces (what a pipe from mysqldump delivers, the buffered path).
The last line is the ceiling: one AESGCM.encrypt call per MiB with no framing at all.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from pathlib import Path

try:
    import dr  # noqa: F401
except ImportError:  # not installed: run against the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from dr.crypto import LocalKeyProvider, decrypt_from, encrypt_to, generate_key_file  # noqa: E402

MIB = 1 << 20
REPEAT = 3
CONTEXT = {"dr:backup": "bench/20261126-1300", "dr:kind": "mysql"}


class NullSink:
    def __init__(self):
        self.n = 0

    def write(self, data) -> int:
        n = len(data)
        self.n += n
        return n


def best_of(fn) -> float:
    best = float("inf")
    for _ in range(REPEAT):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    total_mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    block = os.urandom(MIB)
    total = total_mib * MIB
    mb = total / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        generate_key_file(Path(tmp) / "bench.key")
        provider = LocalKeyProvider(Path(tmp) / "bench.key")

    def encrypt(piece: int, sink) -> None:
        pieces = [memoryview(block)[i:i + piece] for i in range(0, MIB, piece)]
        with encrypt_to(sink, provider, CONTEXT) as w:
            for _ in range(total_mib):
                for p in pieces:
                    w.write(p)

    def encrypt_null(piece: int):
        return lambda: encrypt(piece, NullSink())

    buf = io.BytesIO()
    encrypt(MIB, buf)
    ciphertext = buf.getvalue()
    del buf

    def decrypt_chunks() -> None:
        got = 0
        for chunk in decrypt_from(io.BytesIO(ciphertext), provider, CONTEXT).chunks():
            got += len(chunk)
        assert got == total

    def decrypt_read(piece: int):
        def run() -> None:
            r = decrypt_from(io.BytesIO(ciphertext), provider, CONTEXT)
            got = 0
            while data := r.read(piece):
                got += len(data)
            assert got == total
        return run

    def raw_gcm() -> None:
        aead = AESGCM(os.urandom(32))
        nonce = os.urandom(12)
        for _ in range(total_mib):
            aead.encrypt(nonce, block, b"")

    print(f"{total_mib} MiB, chunk 1 MiB, best of {REPEAT}; overhead "
          f"{len(ciphertext) - total} bytes ({(len(ciphertext) - total) / total:.4%})")
    rows = [
        ("encrypt, 1 MiB writes", encrypt_null(MIB)),
        ("encrypt, 64 KiB writes", encrypt_null(64 << 10)),
        ("decrypt, .chunks()", decrypt_chunks),
        ("decrypt, read(1 MiB)", decrypt_read(MIB)),
        ("decrypt, read(64 KiB)", decrypt_read(64 << 10)),
        ("raw AESGCM.encrypt (ceiling)", raw_gcm),
    ]
    for name, fn in rows:
        seconds = best_of(fn)
        print(f"{name:<30} {seconds:7.3f} s  {mb / seconds:9,.0f} MB/s")


if __name__ == "__main__":
    main()
