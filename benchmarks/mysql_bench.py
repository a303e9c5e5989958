"""dr's MySQL engine against its peers, on one throwaway MariaDB and the same data, in one run.

    python benchmarks/mysql_bench.py [--mb 250] [--repeat 3] [--threads 2]

Backup:  dr dump → zstd -1 (zstandard, in process) → file
         mysqldump --single-transaction | zstd -1 > file
         mydumper -t 2 -c --rows 100000          (gzip'd, chunked: what myloader reads)
Restore: dr restore from its zstd file (load + deferred indexes + CHECKSUM TABLE + swap)
         zstd -dc file | mariadb
         myloader -t 2 on mydumper's chunked output

Each tool runs in its own process (start-up included), interleaved with the others in a
rotating order, after the server has gone idle, `--repeat` times; the table shows medians. MB/s is uncompressed SQL per second: of the tool's own output, and "logical",
the size of dr's SQL for the same rows (one yardstick for all). CPU is the server's plus the
tool's. Peak RSS of every tool comes from /usr/bin/time when present (else dr's own rusage).
The server runs with a 1 GB buffer pool, innodb_flush_log_at_trx_commit=2, no binlog.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.gen_mysql_data import generate  # noqa: E402
from dr.mysql import ConnectionSpec, connect  # noqa: E402
from tests.support.mariadb import MariaDBServer, binaries, client_binary  # noqa: E402

DB = "bench"
TIME = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)


# -- children: dr in its own process, so its RSS and CPU are its own ------------------------

def child_dump(port: int, out: str, threads: int) -> None:
    import zstandard

    from dr.mysql import dump

    spec = ConnectionSpec(host="127.0.0.1", port=port, tls="off")
    t0 = time.monotonic()
    with open(out, "wb") as f:
        writer = zstandard.ZstdCompressor(level=1).stream_writer(f, closefd=False)
        manifest = dump(spec, [DB], writer, threads=threads)
        writer.close()
    print(json.dumps({"seconds": time.monotonic() - t0, "sql_bytes": manifest.bytes_written,
                      "rows": manifest.rows, "maxrss_kb": _maxrss_kb()}))


def child_restore(port: int, src: str, target: str, threads: int) -> None:
    import zstandard

    from dr.mysql import restore

    spec = ConnectionSpec(host="127.0.0.1", port=port, tls="off")
    t0 = time.monotonic()
    with open(src, "rb") as f:
        result = restore(zstandard.ZstdDecompressor().stream_reader(f), spec, target_db=target,
                         threads=threads)
    print(json.dumps({"seconds": time.monotonic() - t0, "load": result.load_seconds,
                      "swap": result.swap_seconds, "rows": result.rows,
                      "sql_bytes": result.bytes_read, "maxrss_kb": _maxrss_kb(),
                      "mismatches": result.mismatches}))


def _maxrss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# -- the parent ------------------------------------------------------------------------------

class Bench:
    def __init__(self, server: MariaDBServer, work: Path, threads: int):
        self.server = server
        self.work = work
        self.threads = threads
        self.results: dict[str, list[dict]] = {}
        self.pid = int((server.base / "mysqld.pid").read_text().strip())

    def server_cpu(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def quiesce(self, limit: float = 30.0) -> None:
        """Wait until the server is idle (purge, page flushing and dropped tables of the last
        run would otherwise be billed to the next one)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            before = self.server_cpu()
            time.sleep(0.5)
            if self.server_cpu() - before < 0.02:
                return

    def run(self, name: str, cmd: str, *, parse_json: bool = False) -> dict:
        """Run a shell command (timed, with server and client CPU), record it under `name`."""
        self.quiesce()
        rss_file = self.work / "rss.txt"
        shell = f"{TIME} -o {rss_file} -f %M sh -c {sh_quote(cmd)}" if TIME else cmd
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu0, t0 = self.server_cpu(), time.monotonic()
        out = subprocess.run(shell, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        seconds = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.returncode != 0:
            raise RuntimeError(f"{name} failed ({out.returncode}): {out.stderr[-2000:]}")
        rec = {"seconds": seconds, "server_cpu": self.server_cpu() - cpu0,
               "client_cpu": (after.ru_utime - before.ru_utime) +
                             (after.ru_stime - before.ru_stime)}
        if TIME and rss_file.exists():
            try:
                rec["maxrss_kb"] = int(rss_file.read_text().split()[-1])
            except (ValueError, IndexError):
                pass
        if parse_json:
            extra = json.loads(out.stdout.strip().splitlines()[-1])
            rec.update(extra)
            rec["seconds"] = seconds  # process wall time, start-up included
        self.results.setdefault(name, []).append(rec)
        return rec

    def sql(self, statement: str) -> None:
        conn = connect(self.server.spec)
        with conn.cursor() as cur:
            cur.execute(statement)
        conn.close()


def rotate(items: list, n: int) -> list:
    n %= max(1, len(items))
    return items[n:] + items[:n]


def sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


def uncompressed_size(path: Path) -> int:
    import zstandard

    total = 0
    with open(path, "rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as r:
        while chunk := r.read(1 << 20):
            total += len(chunk)
    return total


def gzip_dir_size(path: Path) -> int:
    total = 0
    for p in path.iterdir():
        if p.suffix == ".gz":
            with gzip.open(p, "rb") as f:
                while chunk := f.read(1 << 20):
                    total += len(chunk)
        else:
            total += p.stat().st_size
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="dr MySQL engine vs mysqldump/mydumper")
    ap.add_argument("--mb", type=float, default=250, help="data size, MB of SQL (≥ 200)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", help="keep the server's files in this directory")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "dump":
            child_dump(int(rest[0]), rest[1], int(rest[2]))
        else:
            child_restore(int(rest[0]), rest[1], rest[2], int(rest[3]))
        return 0

    if binaries() is None:
        print("MariaDB not installed: apt-get install mariadb-server mariadb-client",
              file=sys.stderr)
        return 2
    tools = {name: client_binary(name) for name in
             ("mysqldump", "mariadb", "mydumper", "myloader", "zstd")}
    missing = [n for n, p in tools.items() if p is None]
    if missing:
        print(f"peers missing, their rows are skipped: {', '.join(missing)} "
              "(apt-get install mariadb-client mydumper zstd)", file=sys.stderr)
    work = Path(args.keep or tempfile.mkdtemp(prefix="dr-mysql-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    server = MariaDBServer(work / "server", buffer_pool="1G").start()
    started = time.monotonic()
    try:
        return _bench(server, work, tools, args, started)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _bench(server, work: Path, tools: dict, args, started: float) -> int:
    generate(server.spec, DB, args.mb)
    b = Bench(server, work, args.threads)
    port = server.port
    conn = f"--no-defaults --host=127.0.0.1 --port={port} --user=root"
    py = sys.executable
    me = Path(__file__).resolve()
    dr_file, md_file, my_dir = work / "dr.zst", work / "mysqldump.sql.zst", work / "mydumper"
    def dr_dump():
        b.run("dr dump | zstd -1", f"{py} {me} --child dump {port} {dr_file} {args.threads}",
              parse_json=True)

    def mysqldump():
        b.run("mysqldump | zstd -1",
              f"{tools['mysqldump']} {conn} --single-transaction --routines --events {DB} "
              f"| {tools['zstd']} -1 -q -f -o {md_file}")

    def mydumper():
        shutil.rmtree(my_dir, ignore_errors=True)
        b.run("mydumper -t 2 -c", f"{tools['mydumper']} --host 127.0.0.1 --port {port} "
                                  f"--user root -B {DB} -t 2 -c --rows 100000 -o {my_dir}")

    def dr_restore():
        b.run("dr restore", f"{py} {me} --child restore {port} {dr_file} r_dr {args.threads}",
              parse_json=True)
        b.sql("DROP DATABASE r_dr")

    def client_restore():
        b.sql("CREATE DATABASE r_client")
        b.run("zstd -dc | mariadb", f"{tools['zstd']} -dc {md_file} | "
                                    f"{tools['mariadb']} {conn} r_client")
        b.sql("DROP DATABASE r_client")

    def myloader():
        b.run("myloader -t 2", f"{tools['myloader']} --host 127.0.0.1 --port {port} "
                               f"--user root -B r_myloader -d {my_dir} -t 2")
        b.sql("DROP DATABASE r_myloader")

    backups = [dr_dump] + ([mysqldump] if tools["mysqldump"] and tools["zstd"] else []) + \
        ([mydumper] if tools["mydumper"] else [])
    restores = [dr_restore] + ([client_restore] if tools["mariadb"] and tools["zstd"] else []) \
        + ([myloader] if tools["myloader"] and tools["mydumper"] else [])
    for rep in range(args.repeat):
        print(f"round {rep + 1}/{args.repeat} ...", file=sys.stderr)
        for target in ("r_dr", "r_client", "r_myloader"):
            b.sql(f"DROP DATABASE IF EXISTS {target}")
        for step in rotate(backups, rep) + rotate(restores, rep):  # nobody always goes first
            step()
    sizes = {"dr dump | zstd -1": b.results["dr dump | zstd -1"][-1]["sql_bytes"]}
    if md_file.exists():
        sizes["mysqldump | zstd -1"] = uncompressed_size(md_file)
    if my_dir.exists():
        sizes["mydumper -t 2 -c"] = gzip_dir_size(my_dir)
    compressed = {"dr dump | zstd -1": dr_file.stat().st_size}
    if md_file.exists():
        compressed["mysqldump | zstd -1"] = md_file.stat().st_size
    if my_dir.exists():
        compressed["mydumper -t 2 -c"] = sum(p.stat().st_size for p in my_dir.iterdir())
    sizes["dr restore"] = sizes["dr dump | zstd -1"]
    sizes["zstd -dc | mariadb"] = sizes.get("mysqldump | zstd -1", 0)
    sizes["myloader -t 2"] = sizes.get("mydumper -t 2 -c", 0)
    report(b, sizes, compressed, args, time.monotonic() - started)
    return 0


def report(b: Bench, sizes: dict, compressed: dict, args, total: float) -> None:
    logical = sizes["dr dump | zstd -1"]
    med = {name: {k: statistics.median(r[k] for r in recs if k in r)
                  for k in recs[0] if isinstance(recs[0][k], (int, float))}
           for name, recs in b.results.items()}
    print(f"\ndr MySQL benchmark: {logical / 1e6:.0f} MB of SQL ({args.mb:g} MB asked), "
          f"{os.cpu_count()} CPUs, threads={args.threads}, median of {args.repeat} "
          f"interleaved runs; total {total:.0f}s\n")
    head = (f"{'':22} {'seconds':>8} {'MB/s own':>9} {'MB/s logical':>13} {'output MB':>10} "
            f"{'compr MB':>9} {'server CPU':>11} {'tool CPU':>9} {'peak RSS':>9}")
    for title, names in (("backup", ["dr dump | zstd -1", "mysqldump | zstd -1",
                                     "mydumper -t 2 -c"]),
                         ("restore", ["dr restore", "zstd -dc | mariadb", "myloader -t 2"])):
        print(f"{title}\n{head}")
        for name in names:
            if name not in med:
                print(f"  {name:20} (skipped: not installed)")
                continue
            m = med[name]
            own = sizes.get(name, 0)
            rss = f"{m['maxrss_kb'] / 1024:.0f} MB" if "maxrss_kb" in m else "-"
            comp = f"{compressed[name] / 1e6:.0f}" if name in compressed else ""
            print(f"  {name:20} {m['seconds']:8.2f} {own / 1e6 / m['seconds']:9.1f} "
                  f"{logical / 1e6 / m['seconds']:13.1f} {own / 1e6:10.0f} {comp:>9} "
                  f"{m['server_cpu']:10.1f}s {m['client_cpu']:8.1f}s {rss:>9}")
        print()
    ratios = [("backup: dr vs mysqldump | zstd -1", "dr dump | zstd -1", "mysqldump | zstd -1"),
              ("backup: dr vs mydumper -t 2 -c", "dr dump | zstd -1", "mydumper -t 2 -c"),
              ("restore: dr vs zstd -dc | mariadb", "dr restore", "zstd -dc | mariadb"),
              ("restore: dr vs myloader -t 2", "dr restore", "myloader -t 2")]
    print("ratios (peer seconds / dr seconds; > 1 means dr is faster)")
    for label, ours, theirs in ratios:
        if ours in med and theirs in med:
            print(f"  {label:36} {med[theirs]['seconds'] / med[ours]['seconds']:5.2f}x   "
                  f"(CPU, server+tool: {(med[theirs]['server_cpu'] + med[theirs]['client_cpu']) / (med[ours]['server_cpu'] + med[ours]['client_cpu']):.2f}x)")
    if "dr restore" in med:
        m = med["dr restore"]
        print(f"\ndr restore = load {m['load']:.2f}s (with deferred indexes and CHECKSUM TABLE "
              f"overlapped) + swap {m['swap']:.2f}s; the RTO of this database is "
              f"{m['seconds']:.1f}s here")
    print("\nraw runs:", json.dumps(b.results, default=str))


if __name__ == "__main__":
    sys.exit(main())
