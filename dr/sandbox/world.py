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
    """Create the world, or complete it: each part is made only if it is not there yet, so
    seeding a running sandbox again (`dr sandbox start --seed` twice) changes nothing."""
    pkey = _key(session.client("kms", PRIMARY), "alias/acme-prod", "acme production data (us-east-1)")
    dkey = _key(session.client("kms", DR), DR_KEY_ALIAS, "dr backups (us-west-2)")

    rds = session.client("rds", PRIMARY)
    _once(lambda: rds.create_db_instance(
        DBInstanceIdentifier=INSTANCE, Engine="mysql", EngineVersion="8.0.35",
        DBInstanceClass="db.t3.micro", AllocatedStorage=20, MasterUsername="acme",
        MasterUserPassword="sandbox-only-password", StorageEncrypted=True,
        KmsKeyId=pkey, Tags=[{"Key": "team", "Value": "web"}],
    ))
    _once(lambda: rds.create_db_cluster(
        DBClusterIdentifier=CLUSTER, Engine="aurora-mysql", MasterUsername="acme",
        MasterUserPassword="sandbox-only-password", StorageEncrypted=True,
        KmsKeyId=pkey,
    ))
    # Someone's own snapshot from before a migration: dr must list it as not its own and never
    # prune it.
    _once(lambda: rds.create_db_snapshot(DBInstanceIdentifier=INSTANCE, DBSnapshotIdentifier=HAND_MADE_SNAPSHOT))
    _seed_assets(session, dkey)
    _seed_dns(session)
    return World(primary_key_arn=pkey, dr_key_arn=dkey)


def _key(kms, alias: str, description: str) -> str:
    """The ARN of the key behind `alias`, made (with the alias) if there is none yet."""
    for page in kms.get_paginator("list_aliases").paginate():
        for entry in page["Aliases"]:
            if entry["AliasName"] == alias and entry.get("TargetKeyId"):
                return kms.describe_key(KeyId=entry["TargetKeyId"])["KeyMetadata"]["Arn"]
    key = kms.create_key(Description=description)["KeyMetadata"]
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    return key["Arn"]


def _once(create) -> None:
    """Make something unless it exists already (AWS says so with an *AlreadyExists* error)."""
    from botocore.exceptions import ClientError

    try:
        create()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if "AlreadyExists" not in code and "AlreadyOwnedByYou" not in code:
            raise


def _seed_assets(session: AwsSession, dr_key_arn: str) -> None:
    """User uploads in us-east-1; an empty, versioned, SSE-KMS bucket waiting in us-west-2."""
    src, dst = session.client("s3", PRIMARY), session.client("s3", DR)
    if ASSETS in {b["Name"] for b in src.list_buckets()["Buckets"]}:
        return  # seeded already (its uploads too)
    src.create_bucket(Bucket=ASSETS)
    src.put_bucket_versioning(Bucket=ASSETS, VersioningConfiguration={"Status": "Enabled"})
    dst.create_bucket(Bucket=ASSETS_DR, CreateBucketConfiguration={"LocationConstraint": DR})
    dst.put_bucket_versioning(Bucket=ASSETS_DR, VersioningConfiguration={"Status": "Enabled"})
    dst.put_bucket_encryption(Bucket=ASSETS_DR, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                               "KMSMasterKeyID": dr_key_arn}}]})
    dst.create_bucket(Bucket=BACKUPS_DR, CreateBucketConfiguration={"LocationConstraint": DR})
    dst.put_bucket_versioning(Bucket=BACKUPS_DR, VersioningConfiguration={"Status": "Enabled"})
    for i in range(24):
        src.put_object(Bucket=ASSETS, Key=f"uploads/2026/11/photo-{i:03d}.jpg",
                       Body=bytes([i]) * (1024 + i), ContentType="image/jpeg",
                       CacheControl="max-age=86400", Metadata={"uploaded-by": f"user-{i}"},
                       Tagging="kind=photo")
    src.put_object(Bucket=ASSETS, Key="index.html", Body=b"<h1>acme</h1>",
                   ContentType="text/html", ContentDisposition="inline")


TEMPLATE = Path(__file__).resolve().parent / "templates" / "lamp.yaml"
ZONE, RECORD = "acme.example.", "www.acme.example."


def _seed_dns(session: AwsSession) -> None:
    """The production record in Route 53, pointing at the primary region's load balancer."""
    r53 = session.client("route53", PRIMARY)
    if [z for z in r53.list_hosted_zones_by_name(DNSName=ZONE)["HostedZones"] if z["Name"] == ZONE]:
        return  # seeded already: the production record is whatever the last failover left
    zone = r53.create_hosted_zone(Name=ZONE, CallerReference="dr-sandbox")["HostedZone"]["Id"]
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {
            "Name": RECORD, "Type": "CNAME", "TTL": 60,
            "ResourceRecords": [{"Value": "acme-web-prod.us-east-1.elb.amazonaws.com"}]}}]})


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
