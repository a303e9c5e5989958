"""Reproduce LocalStack's known S3 bugs (README, "Tests against LocalStack") with plain boto3.

    scripts/localstack.sh start && .venv/bin/python scripts/localstack_s3_bugs.py [ENDPOINT]

Prints one line per check and exits 1 while any bug is there, 0 once all are fixed. Each run
works in a fresh account of its own, so it leaves the tests' buckets alone.
"""

from __future__ import annotations

import json
import random
import sys
import urllib.request

import boto3
from botocore.exceptions import ClientError

KEYS = ["a", "b", "café", "d", "naïve", "z", "ü", "日本", "😀"]


def main(endpoint: str) -> int:
    version = json.loads(urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=5).read())["version"]
    print(f"LocalStack {version} at {endpoint}")
    account = f"{random.randrange(10**11, 10**12):012d}"  # a 12-digit access key id is the account
    session = boto3.session.Session(aws_access_key_id=account, aws_secret_access_key="x",
                                    region_name="us-east-1")
    east = session.client("s3", endpoint_url=endpoint)
    west = session.client("s3", region_name="us-west-2", endpoint_url=endpoint)
    bugs = 0

    def report(name: str, ok: bool, detail: str) -> None:
        nonlocal bugs
        bugs += not ok
        print(f"{'ok ' if ok else 'BUG'} {name}: {detail}")

    # 1. CopyObject keeps the source's tags (TaggingDirective COPY, the default), across regions too
    east.create_bucket(Bucket="src")
    east.create_bucket(Bucket="same-region")
    west.create_bucket(Bucket="other-region", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    east.put_object(Bucket="src", Key="k", Body=b"x", Tagging="kind=photo")
    for client, bucket in ((east, "same-region"), (west, "other-region")):
        client.copy_object(Bucket=bucket, Key="k", CopySource={"Bucket": "src", "Key": "k"})
        tags = client.get_object_tagging(Bucket=bucket, Key="k")["TagSet"]
        report(f"CopyObject us-east-1 -> {bucket} keeps tags", tags == [{"Key": "kind", "Value": "photo"}],
               f"TagSet {tags}")

    # 2. listings page through non-ASCII keys (boto3 paginators, as dr and the AWS CLI list)
    east.create_bucket(Bucket="keys")
    for key in KEYS:
        east.put_object(Bucket="keys", Key=key, Body=b"")
    expected = sorted(KEYS, key=str.encode)  # S3 lists in UTF-8 byte order
    for api, field in (("list_objects_v2", "Contents"), ("list_objects", "Contents"),
                       ("list_object_versions", "Versions")):
        for size in (1, 2, 3):
            pages = east.get_paginator(api).paginate(Bucket="keys", PaginationConfig={"PageSize": size})
            try:
                got = [o["Key"] for page in pages for o in page.get(field, [])]
            except ClientError as exc:
                report(f"{api} in pages of {size}", False,
                       f"{exc.response['Error']['Code']}: {exc.response['Error'].get('Message')}")
                continue
            lost = [k for k in expected if k not in got]
            report(f"{api} in pages of {size}", got == expected,
                   f"lost {lost}" if lost else ("all keys, in order" if got == expected else f"got {got}"))
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:4566"))
