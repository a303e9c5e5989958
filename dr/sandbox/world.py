"""The demo world: a small startup's production in us-east-1, an empty DR region in us-west-2."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dr.aws import AwsSession

PRIMARY, DR = "us-east-1", "us-west-2"
DR_KEY_ALIAS = "alias/dr-backups"
INSTANCE, CLUSTER = "acme-prod-db", "acme-aurora"
HAND_MADE_SNAPSHOT = "acme-prod-db-before-migration"
ASSETS, ASSETS_DR = "acme-assets", "acme-assets-dr"
BACKUPS_DR = "acme-dr-backups"  # MySQL dumps land here, client-side encrypted


@dataclass(frozen=True)
class World:
    primary_key_arn: str
    dr_key_arn: str


def seed(session: AwsSession) -> World:
    """Create the world, or complete it (idempotent): see dr.aws.seed, where its AWS calls live."""
    from dr.aws.seed import seed_world

    return seed_world(session)


TEMPLATE = Path(__file__).resolve().parent / "templates" / "lamp.yaml"
ZONE, RECORD = "acme.example.", "www.acme.example."


SHOP_SQL = (
    "CREATE DATABASE shop CHARACTER SET utf8mb4",
    "CREATE TABLE shop.customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) NOT NULL, "
    "note VARCHAR(100) NULL, balance DECIMAL(20,6) NOT NULL, joined DATETIME(6) NOT NULL)",
    "CREATE TABLE shop.photos (id INT PRIMARY KEY, customer_id INT NOT NULL, data BLOB, "
    "FOREIGN KEY (customer_id) REFERENCES shop.customers(id))",
    "CREATE TABLE shop.audit (id INT PRIMARY KEY AUTO_INCREMENT, what VARCHAR(200))",
    "CREATE VIEW shop.rich AS SELECT id, name FROM shop.customers WHERE balance > 100",
    "CREATE TRIGGER shop.customers_ai AFTER INSERT ON shop.customers FOR EACH ROW "
    "INSERT INTO shop.audit (what) VALUES (CONCAT('new customer ', NEW.name))",
)


def seed_shop(spec) -> None:
    """A small shop database with values that break naive dumpers: 4-byte emoji, quotes and
    backslashes, NULL next to '', full-precision decimals, microseconds, every byte value."""
    from dr.mysql import connect

    conn = connect(spec)
    try:
        with conn.cursor() as cur:
            for statement in SHOP_SQL:
                cur.execute(statement)
            names = ["Ann 🎉", "O'Brien \\ \"quoted\"", "Zoë", "", "李"]
            for i in range(500):
                cur.execute("INSERT INTO shop.customers (name, note, balance, joined) VALUES "
                            "(%s, %s, %s, %s)", (f"{names[i % 5]} #{i}", None if i % 3 else "",
                                                 f"{i * 1234.5678:.6f}",
                                                 f"2026-11-{1 + i % 28:02d} 12:00:00.{i:06d}"))
            for i in range(1, 51):
                cur.execute("INSERT INTO shop.photos VALUES (%s, %s, %s)",
                            (i, i, bytes(range(256)) * i))
        conn.commit()
    finally:
        conn.close()


def mysql_config_text(port: int) -> str:
    return f"""\
mysql:
  - name: shop
    host: 127.0.0.1
    port: {port}
    user: root
    tls: "off"                     # a throwaway local server; over a network use required
    databases: [shop]
    destination: "s3://{BACKUPS_DR}/mysql/"
    schedule: every 1h
    retention: {{last: 3, daily: 7}}
"""


def config_text(endpoint: str, state_path: Path | str, failover: bool = True) -> str:
    """The sandbox world's dr.yaml; `failover=False` leaves out stack, health and dns."""
    text = f"""\
# dr.yaml for the dr sandbox world (dr sandbox start --seed / dr demo)
version: 1
regions: {{primary: {PRIMARY}, dr: {DR}}}
aws: {{endpoint_url: "{endpoint}"}}
objectives: {{rpo: 1h, rto: 30m}}
kms: {{dr_key: {DR_KEY_ALIAS}}}
state: {{path: "{state_path}"}}
rds:
  - name: app-db
    instance: {INSTANCE}
    schedule: every 1h
    retention: {{last: 3, hourly: 24, daily: 7, weekly: 4, monthly: 12}}
  - name: aurora
    cluster: {CLUSTER}
    schedule: every 1h
    retention: {{last: 3, daily: 7}}
s3:
  - name: assets
    source: {ASSETS}
    destination: {ASSETS_DR}
    schedule: every 15m
    delete: keep
"""
    if failover:
        # The sandbox runs no web servers: the health check probes the simulator itself, which
        # stands in for the relaunched site answering 200.
        text += f"""\
stack:
  name: acme-web
  template: "{TEMPLATE}"
  parameters: {{InstanceType: t3.small}}
  snapshot_parameter: DBSnapshotIdentifier
health: {{url: "{endpoint}/moto-api/", consecutive: 2, interval: 1s, timeout: 1m}}
dns: {{provider: route53, zone: {ZONE}, record: {RECORD}, ttl: 60}}
"""
    return text
