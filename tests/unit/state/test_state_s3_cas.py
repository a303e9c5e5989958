"""S3Store's compare-and-swap requests and error mapping, with botocore's Stubber (no server).

The behaviour against an S3 API is in the shared contract (tests/support/state_contract.py, run on moto
by tests/integration/state/test_state_contract_s3.py); here: the exact PutObject parameters, and the
answers moto cannot easily give (409 ConditionalRequestConflict, AccessDenied).
"""

from __future__ import annotations

import io

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from dr.errors import AwsError
from dr.state import S3Store

KEY_ARN = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ETAG = '"9b2cf535f27731c974343645a3985328"'


@pytest.fixture
def stubbed():
    client = boto3.client("s3", region_name="us-west-2")
    with Stubber(client) as stubber:
        yield S3Store(client, "acme-dr-state", prefix="dr", kms_key_id=KEY_ARN), stubber
        stubber.assert_no_pending_responses()


def _put_params(**condition):
    return {"Bucket": "acme-dr-state", "Key": "dr/locks/run.json", "Body": ANY,
            "ContentType": "application/json", "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": KEY_ARN, **condition}


def test_versioned_get_returns_the_etag(stubbed):
    store, stubber = stubbed
    body = b'{"owner": "me"}'
    stubber.add_response("get_object", {"Body": StreamingBody(io.BytesIO(body), len(body)), "ETag": ETAG},
                         {"Bucket": "acme-dr-state", "Key": "dr/locks/run.json"})
    assert store.get_json_versioned("locks/run.json") == ({"owner": "me"}, ETAG)


@pytest.mark.parametrize("version,condition", [(ETAG, {"IfMatch": ETAG}), (None, {"IfNoneMatch": "*"})])
def test_cas_sends_the_condition_and_sse_kms_and_returns_the_new_etag(stubbed, version, condition):
    store, stubber = stubbed
    stubber.add_response("put_object", {"ETag": '"new"'}, _put_params(**condition))
    assert store.put_json_if("locks/run.json", {"owner": "me"}, version) == '"new"'


@pytest.mark.parametrize("version,code,status", [
    (ETAG, "PreconditionFailed", 412), (ETAG, "ConditionalRequestConflict", 409), (ETAG, "NoSuchKey", 404),
    (None, "PreconditionFailed", 412), (None, "ConditionalRequestConflict", 409),
])
def test_cas_that_loses_returns_none(stubbed, version, code, status):
    store, stubber = stubbed
    stubber.add_client_error("put_object", code, http_status_code=status)
    assert store.put_json_if("locks/run.json", {}, version) is None


@pytest.mark.parametrize("code,status", [("AccessDenied", 403), ("NoSuchBucket", 404),
                                         ("KMS.DisabledException", 400), ("InternalError", 500)])
def test_other_cas_errors_are_translated_like_the_other_calls(stubbed, code, status):
    store, stubber = stubbed
    stubber.add_client_error("put_object", code, http_status_code=status)
    with pytest.raises(AwsError) as info:
        store.put_json_if("locks/run.json", {}, ETAG)
    assert info.value.code == code


def test_no_such_key_on_a_create_is_not_swallowed(stubbed):
    store, stubber = stubbed  # only If-Match answers 404 for "lost"; on a create it means trouble
    stubber.add_client_error("put_object", "NoSuchKey", http_status_code=404)
    with pytest.raises(AwsError):
        store.put_json_if("locks/run.json", {}, None)


def test_an_endpoint_without_etags_cannot_do_cas(stubbed):
    store, stubber = stubbed
    stubber.add_response("put_object", {}, _put_params(IfMatch=ETAG))
    with pytest.raises(AwsError, match="no ETag"):
        store.put_json_if("locks/run.json", {}, ETAG)
