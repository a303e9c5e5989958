"""The whole system against its IAM policy: every botocore call that backup, list, verify, prune,
readiness, report, schedule, drill and failover make on the sandbox is allowed by the policy
`dr permissions` prints. It starts an embedded AWS and runs the CLI end to end, so it lives with
the integration tests (it was a third of the unit suite's time)."""

from __future__ import annotations

import fnmatch
import json

import pytest

import dr.cli as cli
from dr.sandbox import world as W
from tests.unit.test_permissions import ACCOUNT, resources


# --- the policy allows every call the code makes ---------------------------------------------------


def _arn_s3(bucket: str, key: str | None = None) -> str:
    return f"arn:aws:s3:::{bucket}" if key is None else f"arn:aws:s3:::{bucket}/{key}"


def _needs(service: str, op: str, params: dict, region: str) -> list[tuple[str, str | None]]:
    """The IAM (action, resource ARN or None for 'not checked') a botocore call needs."""
    if service == "s3":
        bucket, key = params.get("Bucket"), params.get("Key")
        obj = _arn_s3(bucket, key) if key is not None else None
        if op in ("ListObjectsV2", "ListObjects", "HeadBucket"):
            return [("s3:ListBucket", _arn_s3(bucket))]
        if op == "ListMultipartUploads":
            return [("s3:ListBucketMultipartUploads", _arn_s3(bucket))]
        if op in ("GetBucketLocation", "GetBucketVersioning"):
            return [(f"s3:{op}", _arn_s3(bucket))]
        if op == "GetBucketEncryption":
            return [("s3:GetEncryptionConfiguration", _arn_s3(bucket))]
        if op in ("HeadObject", "GetObject"):
            return [("s3:GetObject", obj)]
        if op in ("GetObjectTagging", "PutObject", "DeleteObject", "AbortMultipartUpload"):
            needs = [(f"s3:{op}", obj)]
            if op == "PutObject" and params.get("Tagging"):
                needs.append(("s3:PutObjectTagging", obj))
            return needs
        if op in ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
            needs = [("s3:PutObject", obj)]
            if params.get("Tagging"):
                needs.append(("s3:PutObjectTagging", obj))
            return needs
        if op in ("CopyObject", "UploadPartCopy"):
            src = params["CopySource"]
            if isinstance(src, str):
                sb, _, sk = src.lstrip("/").partition("/")
                src = {"Bucket": sb, "Key": sk}
            needs = [("s3:PutObject", obj),
                     ("s3:GetObjectVersion" if src.get("VersionId") else "s3:GetObject",
                      _arn_s3(src["Bucket"], src["Key"]))]
            if params.get("TaggingDirective") == "COPY":
                needs += [("s3:GetObjectTagging", _arn_s3(src["Bucket"], src["Key"])),
                          ("s3:PutObjectTagging", obj)]
            return needs
        return [(f"s3:{op}", None)]
    if service == "rds":
        def arn(kind, name, where=region):
            return f"arn:aws:rds:{where}:{ACCOUNT}:{kind}:{name}"
        if op == "CreateDBSnapshot":
            return [(f"rds:{op}", arn("db", params["DBInstanceIdentifier"])),
                    (f"rds:{op}", arn("snapshot", params["DBSnapshotIdentifier"]))]
        if op == "CreateDBClusterSnapshot":
            return [(f"rds:{op}", arn("cluster", params["DBClusterIdentifier"])),
                    (f"rds:{op}", arn("cluster-snapshot", params["DBClusterSnapshotIdentifier"]))]
        if op == "CopyDBSnapshot":
            return [(f"rds:{op}", arn("snapshot", params["TargetDBSnapshotIdentifier"]))]
        if op == "CopyDBClusterSnapshot":
            return [(f"rds:{op}", arn("cluster-snapshot", params["TargetDBClusterSnapshotIdentifier"]))]
        if op == "DeleteDBSnapshot":
            return [(f"rds:{op}", arn("snapshot", params["DBSnapshotIdentifier"]))]
        if op == "DeleteDBClusterSnapshot":
            return [(f"rds:{op}", arn("cluster-snapshot", params["DBClusterSnapshotIdentifier"]))]
        return [(f"rds:{op}", None)]
    if service == "sns" and op == "Publish":
        return [("sns:Publish", params["TopicArn"])]
    return [(f"{service}:{op}", None)]


def _allowed(policy: dict, action: str, resource: str | None) -> bool:
    """Whether an Allow statement grants `action` on `resource` (conditions are not evaluated:
    they narrow *how* a call may be made, which the sandbox does not model)."""
    for s in policy["Statement"]:
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        if action not in actions:
            continue
        if resource is None or any(fnmatch.fnmatchcase(resource, pattern) for pattern in resources(s)):
            return True
    return False


@pytest.mark.integration
def test_the_policy_allows_every_aws_call_the_commands_make(tmp_path, monkeypatch, capsys):
    """Every botocore call of backup/list/verify/prune/readiness/report/schedule/drill/failover on
    the sandbox, with the state in S3 and alerts on SNS, is allowed by `dr permissions`."""
    import botocore.client

    from dr.aws import AwsSession
    from dr.sandbox.server import EmbeddedAws

    calls: list[tuple[str, str, dict, str]] = []
    recording = {"on": False}
    original = botocore.client.BaseClient._make_api_call

    def record(self, operation_name, api_params):
        if recording["on"]:
            calls.append((self.meta.service_model.endpoint_prefix if self.meta.service_model.service_name != "s3"
                          else "s3", operation_name, dict(api_params), self.meta.region_name))
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    with EmbeddedAws() as aws:
        session = AwsSession(endpoint_url=aws.endpoint)
        W.seed(session)
        session.client("s3", W.DR).create_bucket(Bucket="acme-dr-state",
                                                 CreateBucketConfiguration={"LocationConstraint": W.DR})
        topic = session.client("sns", W.DR).create_topic(Name="dr-alerts")["TopicArn"]
        text = W.config_text(aws.endpoint, tmp_path / "state")
        text = text.replace(f'state: {{path: "{tmp_path / "state"}"}}', "state: {bucket: acme-dr-state, prefix: dr}")
        assert "acme-dr-state" in text
        text = text.replace("    delete: keep\n", "    delete: keep\n    multipart_threshold: 5MiB\n")
        assert "multipart_threshold" in text
        session.client("s3", W.PRIMARY).put_object(Bucket=W.ASSETS, Key="big/video.bin", Body=b"v" * (6 * 1024**2),
                                                   Tagging="kind=video")
        text += f"notify: {{sns_topic: {topic}}}\n"
        path = tmp_path / "dr.yaml"
        path.write_text(text)
        monkeypatch.setenv("DR_SPOOL_DIR", str(tmp_path / "spool"))

        recording["on"] = True
        for argv in (["backup", "run"], ["backup", "run"], ["backup", "list", "--all"], ["backup", "verify", "--deep", "all"],
                     ["backup", "prune"], ["validate", "--readiness"], ["report"], ["runs", "list"],
                     ["schedule", "--once", "--no-http"], ["drill"],
                     ["restore", "--to-region", W.DR, "--yes"]):
            code = cli.main(["--config", str(path), *argv])
            out = capsys.readouterr()
            assert code in (0, 3), (argv, out.out[-2000:], out.err[-2000:])
        recording["on"] = False
        capsys.readouterr()
        code = cli.main(["--config", str(path), "permissions", "--account", ACCOUNT])
        assert code == 0
        policy = json.loads(capsys.readouterr().out)

    seen = {(service, op) for service, op, _, _ in calls}
    # the run must have exercised every area, or the check below proves little
    for needed in (("rds", "CopyDBSnapshot"), ("rds", "CopyDBClusterSnapshot"), ("s3", "CopyObject"),
                   ("s3", "UploadPartCopy"), ("s3", "GetObjectTagging"),
                   ("s3", "PutObject"), ("kms", "DescribeKey"), ("cloudformation", "CreateStack"),
                   ("route53", "ChangeResourceRecordSets"), ("rds", "RestoreDBInstanceFromDBSnapshot"),
                   ("sns", "Publish")):
        assert needed in seen, f"the commands made no {needed} call"
    denied = sorted({f"{action} on {resource or '(resource not checked)'} (for {service}:{op} in {region})"
                     for service, op, params, region in calls
                     for action, resource in _needs(service, op, params, region)
                     if not _allowed(policy, action, resource)})
    assert not denied, "dr permissions does not allow calls the code makes:\n" + "\n".join(denied)
