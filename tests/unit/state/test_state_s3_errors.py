"""S3Store's requests and error mapping, with botocore's Stubber (no server, no network).

moto cannot easily produce AccessDenied, KMS or conflict errors, so these are checked here;
the behaviour against a real S3 API lives in tests/integration/state/test_state_s3.py.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber

from dr.errors import AwsError
from dr.state import S3Store

KEY_ARN = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture
def stubbed():
    client = boto3.client("s3", region_name="us-west-2")
    with Stubber(client) as stubber:
        yield S3Store(client, "acme-dr-state", prefix="dr", kms_key_id=KEY_ARN), stubber
        stubber.assert_no_pending_responses()


def _put_params(**extra):
    return {"Bucket": "acme-dr-state", "Key": "dr/locks/run.json", "Body": ANY,
            "ContentType": "application/json", "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": KEY_ARN, **extra}


def test_create_sends_if_none_match_and_sse_kms(stubbed):
    store, stubber = stubbed
    stubber.add_response("put_object", {}, _put_params(IfNoneMatch="*"))
    assert store.create_json("locks/run.json", {"owner": "me"}) is True


@pytest.mark.parametrize("code,status", [("PreconditionFailed", 412), ("ConditionalRequestConflict", 409)])
def test_create_that_loses_returns_false(stubbed, code, status):
    store, stubber = stubbed
    stubber.add_client_error("put_object", code, http_status_code=status,
                             expected_params=_put_params(IfNoneMatch="*"))
    assert store.create_json("locks/run.json", {}) is False


def test_precondition_failed_on_a_plain_put_is_not_swallowed(stubbed):
    store, stubber = stubbed
    stubber.add_client_error("put_object", "PreconditionFailed", http_status_code=412)
    with pytest.raises(AwsError):
        store.put_json("locks/run.json", {})


@pytest.mark.parametrize("method,args", [("put_object", ("put_json", "runs/x.json", {})),
                                         ("get_object", ("get_json", "runs/x.json")),
                                         ("delete_object", ("delete", "runs/x.json"))])
def test_access_denied_names_the_iam_actions(stubbed, method, args):
    store, stubber = stubbed
    stubber.add_client_error(method, "AccessDenied", "Access Denied", http_status_code=403)
    with pytest.raises(AwsError) as info:
        getattr(store, args[0])(*args[1:])
    assert info.value.code == "AccessDenied"
    text = str(info.value)
    assert "s3://acme-dr-state/dr/runs/x.json" in text
    for action in ("s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject"):
        assert action in text


def test_access_denied_on_check(stubbed):
    store, stubber = stubbed
    stubber.add_client_error("head_bucket", "403", http_status_code=403)
    with pytest.raises(AwsError, match="access denied.*acme-dr-state"):
        store.check()


def test_kms_errors_name_the_key(stubbed):
    store, stubber = stubbed
    stubber.add_client_error("put_object", "KMS.DisabledException", "key is disabled", http_status_code=400)
    with pytest.raises(AwsError) as info:
        store.put_json("runs/x.json", {})
    assert info.value.code == "KMS.DisabledException"
    assert KEY_ARN in str(info.value)


def test_other_errors_keep_code_and_name_the_object(stubbed):
    store, stubber = stubbed
    stubber.add_client_error("get_object", "InvalidObjectState", "archived", http_status_code=403)
    with pytest.raises(AwsError) as info:
        store.get_json("runs/x.json")
    assert info.value.code == "InvalidObjectState"
    assert "s3://acme-dr-state/dr/runs/x.json" in str(info.value)
    assert "archived" in str(info.value)
