"""Generate a realistic MySQL/MariaDB data set for benchmarks (default ~250 MB of SQL).

    python benchmarks/gen_mysql_data.py --uri mysql://root@127.0.0.1:3306/bench --mb 250

Tables, like an office LAMP app's: customers (varchar, datetime, decimal, text with NULLs),
orders (bigint key, enum, decimals, DATETIME(6), two secondary indexes), order_items (composite
primary key: keyset chunking), audit_log (JSON-ish text), attachments (a blob table of 5-80 KB,
part compressible, part random). Rows are made by the server (MariaDB's SEQUENCE engine) so
generating 250 MB takes seconds, not minutes; blobs come from Python.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dr.mysql import ConnectionSpec, connect, parse_uri  # noqa: E402

CITIES = ["Berlin", "München", "Zürich", "Kraków", "São Paulo", "Lyon", "Oslo", "Łódź",
          "Reykjavík", "Málaga", "İstanbul", "Ōsaka"]
# MB of SQL each table contributes per unit of scale (1.0 ≈ 250 MB in all)
SHARES = {"customers": 0.16, "orders": 0.36, "order_items": 0.24, "audit_log": 0.12,
          "attachments": 0.12}

DDL = [
    """CREATE TABLE customers (
        id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        name VARCHAR(100) NOT NULL, email VARCHAR(150) NOT NULL, city VARCHAR(50),
        created DATETIME NOT NULL, balance DECIMAL(12,2) NOT NULL DEFAULT 0,
        notes TEXT NULL, KEY (email)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE orders (
        id BIGINT UNSIGNED NOT NULL PRIMARY KEY, customer_id INT UNSIGNED NOT NULL,
        status ENUM('new','paid','shipped','cancelled','refunded') NOT NULL,
        total DECIMAL(10,2) NOT NULL, tax DECIMAL(10,4) NOT NULL,
        created_at DATETIME(6) NOT NULL, shipped_at DATETIME NULL,
        comment VARCHAR(255) NULL, KEY (customer_id), KEY (created_at))
        ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE order_items (
        order_id BIGINT UNSIGNED NOT NULL, line SMALLINT UNSIGNED NOT NULL,
        product_id INT UNSIGNED NOT NULL, qty SMALLINT NOT NULL, price DECIMAL(9,2) NOT NULL,
        PRIMARY KEY (order_id, line)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE audit_log (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, at TIMESTAMP(3) NOT NULL,
        actor VARCHAR(64) NOT NULL, action VARCHAR(32) NOT NULL, payload TEXT NOT NULL)
        ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE attachments (
        id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(200) NOT NULL,
        mime VARCHAR(50) NOT NULL, data MEDIUMBLOB NOT NULL)
        ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
]


def _seq(cur, n: int, sql: str, step: int = 200_000) -> None:
    """Run an INSERT ... SELECT over seq values 1..n in slices (the SEQUENCE engine)."""
    for lo in range(1, n + 1, step):
        hi = min(n, lo + step - 1)
        cur.execute(sql.replace("{seq}", f"seq_{lo}_to_{hi}"))


def generate(spec: ConnectionSpec, db: str, mb: float = 250, *, quiet: bool = False) -> dict:
    """(Re)create `db` with about `mb` MB of SQL worth of rows; returns {table: rows}."""
    scale = mb / 250
    n_customers = int(600_000 * scale)
    n_orders = int(1_000_000 * scale)
    n_log = int(60_000 * scale)
    n_attach = int(700 * scale)
    conn = connect(spec)
    t0 = time.monotonic()
    cities = ",".join("'" + c + "'" for c in CITIES)
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode='NO_ENGINE_SUBSTITUTION', unique_checks=0")
        cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
        conn.select_db(db)
        for ddl in DDL:
            cur.execute(ddl)
        _seq(cur, n_customers, f"""INSERT INTO customers
            SELECT seq, CONCAT(ELT(1 + seq % 7, 'Anna', 'Jörg', 'Zoë', 'Li', 'Олег', 'María',
                   'O''Brien'), ' ', SUBSTR(MD5(seq), 1, 8)),
                   CONCAT('user', seq, '@example.', ELT(1 + seq % 3, 'com', 'de', 'co.uk')),
                   ELT(1 + seq % {len(CITIES)}, {cities}),
                   '2015-01-01' + INTERVAL (seq * 7919) % 3000 DAY + INTERVAL seq % 86400 SECOND,
                   ((seq * 104729) % 10000000) / 100 - 20000,
                   IF(seq % 4 = 0, NULL, CONCAT('Customer since ', 2015 + seq % 10, '. ',
                      REPEAT(SHA1(seq), 1 + seq % 3)))
            FROM {{seq}}""")
        _seq(cur, n_orders, f"""INSERT INTO orders
            SELECT seq * 3, 1 + (seq * 31) % {n_customers},
                   ELT(1 + seq % 5, 'new', 'paid', 'shipped', 'cancelled', 'refunded'),
                   ((seq * 7) % 100000) / 100, ((seq * 13) % 1000000) / 10000,
                   '2018-01-01' + INTERVAL seq * 17 SECOND + INTERVAL seq % 1000000 MICROSECOND,
                   IF(seq % 5 = 2, '2018-01-02' + INTERVAL seq * 17 SECOND, NULL),
                   IF(seq % 3 = 0, NULL, CONCAT('Order note ', SUBSTR(SHA2(seq, 256), 1,
                      20 + seq % 40), IF(seq % 11 = 0, ' — "rush" \\\\ it''s urgent', '')))
            FROM {{seq}}""")
        for line in (1, 2, 3):
            _seq(cur, n_orders if line == 1 else n_orders // (2 * line), f"""
                INSERT INTO order_items SELECT seq * 3, {line}, 1 + (seq * 97) % 50000,
                       1 + seq % 9, ((seq * 37) % 50000) / 100 FROM {{seq}}""")
        _seq(cur, n_log, """INSERT INTO audit_log (at, actor, action, payload)
            SELECT '2023-01-01' + INTERVAL seq * 3 SECOND, CONCAT('svc-', seq % 17),
                   ELT(1 + seq % 4, 'login', 'update', 'export', 'delete'),
                   CONCAT('{"request":"', MD5(seq), '","path":"/api/v1/items/', seq,
                          '","ip":"10.', seq % 256, '.', (seq * 7) % 256, '.1","body":"',
                          REPEAT(SHA1(seq * 2), 8 + seq % 6), '","ok":', IF(seq % 9, 'true',
                          'false'), '}')
            FROM {seq}""")
        rnd = random.Random(42)
        batch = []
        for i in range(n_attach):
            size = rnd.randint(5_000, 80_000)
            if i % 2:  # half random (JPEG-like), half compressible (documents)
                data = rnd.randbytes(size)
            else:
                words = [rnd.choice(CITIES).encode() for _ in range(size // 8)]
                data = b" ".join(words)[:size]
            batch.append((f"file-{i}.{'jpg' if i % 2 else 'txt'}",
                          "image/jpeg" if i % 2 else "text/plain", data))
            if len(batch) == 20:
                cur.executemany("INSERT INTO attachments (name, mime, data) VALUES (%s,%s,%s)",
                                batch)
                batch = []
        if batch:
            cur.executemany("INSERT INTO attachments (name, mime, data) VALUES (%s,%s,%s)",
                            batch)
        cur.execute("ANALYZE TABLE customers, orders, order_items, audit_log, attachments")
        cur.fetchall()
        cur.execute("SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH + INDEX_LENGTH FROM "
                    "information_schema.TABLES WHERE TABLE_SCHEMA=%s", (db,))
        sizes = {name: (rows, size) for name, rows, size in cur.fetchall()}
    conn.close()
    if not quiet:
        total = sum(s for _, s in sizes.values())
        print(f"generated {db} in {time.monotonic() - t0:.1f}s: "
              + ", ".join(f"{n} ~{r:,} rows" for n, (r, _) in sorted(sizes.items()))
              + f"; InnoDB size {total / 1e6:.0f} MB", file=sys.stderr)
    return {n: r for n, (r, _) in sizes.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--uri", required=True, help="mysql://user[:password]@host[:port]/DB")
    ap.add_argument("--mb", type=float, default=250, help="approximate MB of SQL (default 250)")
    args = ap.parse_args(argv)
    spec, db = parse_uri(args.uri)
    generate(spec, db or "bench", args.mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
