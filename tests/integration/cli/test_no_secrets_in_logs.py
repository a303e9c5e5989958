"""No secret in any output at any verbosity: every command that makes or unwraps a KMS data key
runs with `-v` (as a user would, in its own process), and everything it printed is searched for
the plaintext data keys (base64 and hex) and the database password.

botocore's DEBUG log prints KMS GenerateDataKey and Decrypt responses, plaintext data keys
included; dr/obs/logging.py keeps it (and the other client libraries) at INFO at most.
"""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dr.crypto.format import read_header
from tests.support.mariadb import mariadb, mariadb_server, sakila  # noqa: F401

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
BUCKET = "acme-dr-backups"
PASSWORD = "Sh0p-p4ss-NEVER-SHOWN"


def _dr(config: Path, *args: str) -> tuple[int, str]:
    out = subprocess.run([sys.executable, "-m", "dr", "-v", "--config", str(config), *args], cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO), "DR_RESTORE_PASSWORD": PASSWORD},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    return out.returncode, out.stdout.decode(errors="replace")


def test_every_command_with_verbose_logging_keeps_data_keys_and_passwords_out(endpoint, boto, tmp_path,
                                                                              mariadb, sakila):  # noqa: F811
    from dr.mysql import connect

    conn = connect(mariadb)
    try:
        with conn.cursor() as cur:  # a backup account with a password to leak
            cur.execute(f"CREATE USER IF NOT EXISTS 'drbackup'@'%' IDENTIFIED BY '{PASSWORD}'")
            cur.execute("GRANT ALL ON *.* TO 'drbackup'@'%'")
    finally:
        conn.close()
    kms = boto("kms", "us-west-2")
    kms.create_alias(AliasName="alias/dr-backups", TargetKeyId=kms.create_key()["KeyMetadata"]["Arn"])
    boto("s3", "us-west-2").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    config = tmp_path / "dr.yaml"
    server = f"host: 127.0.0.1, port: {mariadb.port}, user: drbackup, password: {{env: DR_TEST_MYSQL_PASSWORD}}, tls: 'off'"
    config.write_text(
        "version: 1\nregions: {primary: us-east-1, dr: us-west-2}\n"
        f"aws: {{endpoint_url: '{endpoint}'}}\nobjectives: {{rpo: 1h, rto: 30m}}\n"
        f"kms: {{dr_key: alias/dr-backups}}\nstate: {{path: '{tmp_path / 'state'}'}}\nmysql:\n"
        + "".join(f"  - {{name: {name}, {server}, databases: [{sakila}], destination: 's3://{BUCKET}/mysql/', "
                  f"schedule: every 1h, retention: {{last: 3}}, verify: {{{server}}}}}\n"
                  for name in ("lamp-a", "lamp-b")))
    os.environ["DR_TEST_MYSQL_PASSWORD"] = PASSWORD
    try:
        outputs = {}
        for args in (["schedule", "--once", "--no-http"], ["backup", "run", "--only", "mysql", "--name", "lamp-b"],
                     ["backup", "verify", "--name", "lamp-a"], ["backup", "list"],
                     ["restore", "mysql", "--name", "lamp-b", "--to",
                      f"mysql://drbackup@127.0.0.1:{mariadb.port}/leak_check_restored"],
                     ["validate", "--readiness"], ["report"]):
            code, text = _dr(config, *args)
            outputs[" ".join(args)] = text
            assert code in (0, 3), (args, text[-3000:])
    finally:
        del os.environ["DR_TEST_MYSQL_PASSWORD"]
    assert " INFO " in outputs["schedule --once --no-http"]  # the daemon's log is there to search

    s3 = boto("s3", "us-west-2")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"] if o["Key"].endswith(".drenc")]
    assert len(keys) == 2  # one from the scheduler, one from backup run
    secrets = [PASSWORD]
    for key in keys:
        header = read_header(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key, Range="bytes=0-4095")["Body"].read()))
        plain = kms.decrypt(CiphertextBlob=header.wrapped_key, EncryptionContext=header.context)["Plaintext"]
        secrets += [base64.b64encode(plain).decode(), plain.hex(), plain.hex().upper()]
    for command, text in outputs.items():
        for secret in secrets:
            assert secret not in text, f"`dr -v {command}` printed a secret"
