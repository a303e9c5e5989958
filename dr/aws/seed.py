"""The sandbox demo world's AWS resources (dr/sandbox/world.py names them), made with plain calls.

This is setup for a local simulation, not dr's own I/O, so it talks to the clients directly; it
lives here because only dr/aws/ may.
"""

from __future__ import annotations

from dr.aws.session import AwsSession
from dr.sandbox.world import (ASSETS, ASSETS_DR, BACKUPS_DR, CLUSTER, DR, DR_KEY_ALIAS, HAND_MADE_SNAPSHOT,
                              INSTANCE, PRIMARY, RECORD, ZONE, World)


def seed_world(session: AwsSession) -> World:
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


def proof(session: AwsSession, dr_key_arn: str) -> list[dict]:
    """`dr demo`'s last word: the DR region's copies as plain boto3 sees them, not through dr."""
    from dr.sandbox import world

    rds = session.client("rds", world.DR)
    found = rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"] + [
        {**c, "DBSnapshotIdentifier": c["DBClusterSnapshotIdentifier"]}
        for c in rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]]
    snapshots = [{"id": s["DBSnapshotIdentifier"], "status": s["Status"],
                  "encrypted": bool(s.get("Encrypted", s.get("StorageEncrypted"))),
                  "dr_key": s.get("KmsKeyId") == dr_key_arn,
                  "tags": {t["Key"]: t["Value"] for t in s.get("TagList", [])
                           if t["Key"] in ("dr:managed", "dr:name", "dr:role")}}
                 for s in found]
    s3 = session.client("s3", world.DR)
    key = "uploads/2026/11/photo-007.jpg"
    head = s3.head_object(Bucket=world.ASSETS_DR, Key=key)
    tags = s3.get_object_tagging(Bucket=world.ASSETS_DR, Key=key)["TagSet"]
    count = s3.list_objects_v2(Bucket=world.ASSETS_DR)["KeyCount"]
    return snapshots + [{
        "id": f"s3://{world.ASSETS_DR}/{key} (1 of {count} objects)", "status": "present",
        "encrypted": head.get("ServerSideEncryption") == "aws:kms",
        "dr_key": head.get("SSEKMSKeyId") == dr_key_arn,
        "tags": {"Content-Type": head.get("ContentType"), **head.get("Metadata", {}),
                 **{t["Key"]: t["Value"] for t in tags}}}]
