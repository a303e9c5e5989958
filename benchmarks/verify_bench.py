"""What a verification costs: `dr backup verify` (fetch, decrypt, decompress, restore into a
scratch database, compare row counts and CHECKSUM TABLE with the manifest, drop) next to the
backup it proves, on one throwaway MariaDB (source and scratch server alike).

    python benchmarks/verify_bench.py --sakila [--repeat 5]     # the Sakila sample database
    python benchmarks/verify_bench.py --mb 100 [--repeat 3]     # generated data (gen_mysql_data)

Both go through the CLI in process (`dr backup run`, `dr backup verify`) to a file:// destination
with a local key; the figures are the run records' own: the verify run's `verify_seconds` (all of
it) and `restore_seconds` (the restore alone: the measured RTO of that database), and the backup
run's duration. Medians of --repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dr.cli import main as dr_main  # noqa: E402
from tests.support.mariadb import MariaDBServer, client_binary  # noqa: E402


def load_sakila(server: MariaDBServer) -> str:
    import subprocess

    folder = Path(os.environ.get("DR_FIXTURES", ROOT.parent / "shared" / "fixtures")) / "sakila"
    client = client_binary("mariadb") or client_binary("mysql")
    for name in ("sakila-schema.sql", "sakila-data.sql"):
        with open(folder / name, "rb") as f:
            subprocess.run([client, "--no-defaults", *server.client_args()], stdin=f, check=True,
                           stdout=subprocess.DEVNULL)
    return "sakila"


def run(argv: list[str]) -> dict:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = dr_main(["--output", "json", *argv])
    if code != 0:
        raise RuntimeError(f"dr {' '.join(argv)} exited {code}: {out.getvalue()[-2000:]}")
    return json.loads(out.getvalue())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sakila", action="store_true", help="Sakila instead of generated data")
    ap.add_argument("--mb", type=float, default=100, help="generated data, MB of SQL")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dr-verify-bench-") as tmp:
        work = Path(tmp)
        server = MariaDBServer(work / "mariadb", buffer_pool="512M").start()
        try:
            if args.sakila:
                db = load_sakila(server)
            else:
                from benchmarks.gen_mysql_data import generate

                db = "bench"
                generate(server.spec, db, args.mb, quiet=True)
            assert dr_main(["keygen", str(work / "k.key")]) == 0
            config = work / "dr.yaml"
            port = server.port
            config.write_text(
                "version: 1\nregions: {primary: us-east-1, dr: us-west-2}\n"
                "objectives: {rpo: 1h, rto: 30m}\nkms: {dr_key: alias/dr-backups}\n"
                f"state: {{path: '{work / 'state'}'}}\n"
                f"mysql:\n  - {{name: bench, host: 127.0.0.1, port: {port}, user: root, tls: 'off', "
                f"databases: [{db}], destination: 'file://{work}/backups', schedule: every 1h, "
                f"retention: {{last: 100}}, key_file: '{work / 'k.key'}', "
                f"verify: {{host: 127.0.0.1, port: {port}, user: root, tls: 'off', every: 1d}}}}\n")
            backups, verifies, restores = [], [], []
            for i in range(args.repeat):
                for old in (work / "backups").rglob("*"):  # so this slot backs up again
                    if old.is_file():
                        old.unlink()
                t0 = time.monotonic()
                done = run(["--config", str(config), "backup", "run", "--only", "mysql"])
                backups.append(time.monotonic() - t0)
                summary = done["run"]["results"][0]["summary"]
                found = run(["--config", str(config), "backup", "verify", "--name", "bench"])["bench"]
                assert found["ok"], found
                verifies.append(found["verify_seconds"])
                restores.append(found["restore_seconds"])
                print(f"run {i + 1}: backup {backups[-1]:.2f}s ({summary['stored_bytes']:,} bytes "
                      f"stored, {summary['rows']:,} rows), verify {verifies[-1]:.2f}s of which "
                      f"restore {restores[-1]:.2f}s", flush=True)
            b, v, r = (statistics.median(x) for x in (backups, verifies, restores))
            print(json.dumps({"data": "sakila" if args.sakila else f"{args.mb} MB generated",
                              "repeat": args.repeat, "backup_seconds": round(b, 2),
                              "verify_seconds": round(v, 2), "restore_seconds": round(r, 2),
                              "verify_vs_backup": round(v / b, 2)}))
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
