"""FakeAws: dr's AWS adapters in memory, for unit tests (restic's mem backend).

`FakeAws()` stands where an AwsSession goes (`ctx.aws`, `StepContext.session`): `rds(region)`,
`s3(region)`, `cfn(region)`, `kms(region)`, `sns(region)` return objects with the adapters'
methods, over one shared in-memory world. It answers as AWS does where dr looks (None for what
does not exist, AwsError with AWS's code for what fails), and tests/support/aws_contract.py runs the same
cases against it and against the moto sandbox, so the two cannot drift.

Everything happens at once: a snapshot, a copy and a stack are complete when made.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from dr.aws.cfn import Stack, StackEvent
from dr.aws.rds import CLUSTER, RdsKind, Snapshot, Source
from dr.aws.s3 import GONE, Upload
from dr.aws.s3 import ObjectInfo
from dr.errors import AwsError

ACCOUNT = "123456789012"
_T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass
class _Object:
    body: bytes
    etag: str
    modified: datetime
    fields: dict[str, Any] = field(default_factory=dict)  # ContentType, Metadata, SSE, ...
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class _World:
    sources: dict[tuple[str, str, str], Source] = field(default_factory=dict)  # (region, kind, id)
    snapshots: dict[tuple[str, str, str], Snapshot] = field(default_factory=dict)
    buckets: dict[str, str] = field(default_factory=dict)  # name -> region
    objects: dict[tuple[str, str], _Object] = field(default_factory=dict)  # (bucket, key)
    stacks: dict[tuple[str, str], Stack] = field(default_factory=dict)  # (region, name)
    events: dict[str, list[StackEvent]] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)  # stack id -> its template
    keys: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (region, alias|id|arn)
    published: list[dict[str, str]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    ticks: Iterator[int] = field(default_factory=itertools.count)

    def now(self) -> datetime:
        """A time that moves a second per event, so everything made has an order."""
        return datetime.fromtimestamp(_T0.timestamp() + next(self.ticks), timezone.utc)


class FakeAws:
    """An in-memory AwsSession for the typed adapters; `world` holds everything."""

    endpoint_url = None
    profile = None

    def __init__(self) -> None:
        self.world = _World()

    def rds(self, region: str) -> FakeRds:
        return FakeRds(self.world, region)

    def s3(self, region: str) -> FakeS3:
        return FakeS3(self.world, region)

    def cfn(self, region: str) -> FakeCfn:
        return FakeCfn(self.world, region)

    def kms(self, region: str) -> FakeKms:
        return FakeKms(self.world, region)

    def sns(self, region: str) -> FakeSns:
        return FakeSns(self.world, region)

    def client(self, service: str, region: str):
        raise AssertionError(f"a raw {service} client was asked of FakeAws: use the typed adapters (dr.aws)")

    # -- world building (what a test sets up before the code under test runs)

    def add_source(self, region: str, kind: RdsKind, source_id: str, *, encrypted: bool = True,
                   kms_key_id: str | None = None) -> Source:
        arn = f"arn:aws:rds:{region}:{ACCOUNT}:{'cluster' if kind is CLUSTER else 'db'}:{source_id}"
        source = Source(source_id, arn, "available", encrypted, kms_key_id)
        self.world.sources[(region, kind.kind, source_id)] = source
        return source

    def add_bucket(self, name: str, region: str) -> None:
        self.world.buckets[name] = region


def _error(code: str, message: str, action: str, resource: str, region: str) -> AwsError:
    return AwsError(f"{action} {resource} in {region}: {code}: {message}", code=code)


class FakeRds:
    def __init__(self, world: _World, region: str):
        self.world, self.region = world, region

    def source(self, kind: RdsKind, source_id: str) -> Source | None:
        return self.world.sources.get((self.region, kind.kind, source_id))

    def snapshots(self, kind: RdsKind, source_id: str) -> list[Snapshot]:
        with self.world.lock:
            return [s for (region, k, _), s in sorted(self.world.snapshots.items())
                    if region == self.region and k == kind.kind and s.source_id == source_id]

    def snapshot(self, kind: RdsKind, snapshot_id: str) -> Snapshot | None:
        return self.world.snapshots.get((self.region, kind.kind, snapshot_id))

    def create_snapshot(self, kind: RdsKind, source_id: str, snapshot_id: str,
                        tags: dict[str, str]) -> Snapshot:
        with self.world.lock:
            source = self.source(kind, source_id)
            if source is None:
                raise _error(kind.source_not_found, f"{source_id} not found", "creating snapshot of",
                             f"{kind.label} {source_id}", self.region)
            self._must_be_new(kind, snapshot_id, "creating snapshot of", f"{kind.label} {source_id}")
            created = self.world.now()
            snap = Snapshot(id=snapshot_id, arn=self._arn(kind, snapshot_id), region=self.region,
                            source_id=source_id, status="available", created=created,
                            encrypted=source.encrypted, kms_key_id=source.kms_key_id, tags=dict(tags),
                            progress=100, recovery_time=created)  # OriginalSnapshotCreateTime
            self.world.snapshots[(self.region, kind.kind, snapshot_id)] = snap
            return snap

    def copy_snapshot(self, kind: RdsKind, source: Snapshot, target_id: str, kms_key_arn: str,
                      tags: dict[str, str]) -> Snapshot:
        with self.world.lock:
            if self.world.snapshots.get((source.region, kind.kind, source.id)) is None:
                raise _error(kind.not_found, f"{source.id} not found", "copying snapshot",
                             f"{source.id} from {source.region}", self.region)
            self._must_be_new(kind, target_id, "copying snapshot", f"{source.id} from {source.region}")
            copy = replace(source, id=target_id, arn=self._arn(kind, target_id), region=self.region,
                           created=self.world.now(), encrypted=True, kms_key_id=kms_key_arn, tags=dict(tags))
            self.world.snapshots[(self.region, kind.kind, target_id)] = copy
            return copy

    def delete_snapshot(self, kind: RdsKind, snapshot_id: str) -> None:
        with self.world.lock:
            if self.world.snapshots.pop((self.region, kind.kind, snapshot_id), None) is None:
                raise _error(kind.not_found, f"{snapshot_id} not found", "deleting snapshot", snapshot_id,
                             self.region)

    def _must_be_new(self, kind: RdsKind, snapshot_id: str, action: str, resource: str) -> None:
        if (self.region, kind.kind, snapshot_id) in self.world.snapshots:
            raise _error(kind.already_exists, f"{snapshot_id} already exists", action, resource, self.region)

    def _arn(self, kind: RdsKind, snapshot_id: str) -> str:
        return f"arn:aws:rds:{self.region}:{ACCOUNT}:{'cluster-snapshot' if kind is CLUSTER else 'snapshot'}:" \
               f"{snapshot_id}"


class FakeS3:
    def __init__(self, world: _World, region: str):
        self.world, self.region = world, region

    def _bucket(self, bucket: str, action: str, resource: str) -> None:
        if bucket not in self.world.buckets:
            raise _error("NoSuchBucket", "The specified bucket does not exist", action, resource, self.region)

    def _object(self, bucket: str, key: str, action: str) -> _Object:
        self._bucket(bucket, action, f"s3://{bucket}/{key}")
        found = self.world.objects.get((bucket, key))
        if found is None:
            raise _error("404", "Not Found", action, f"s3://{bucket}/{key}", self.region)
        return found

    def create_bucket(self, bucket: str) -> None:
        self.world.buckets[bucket] = self.region

    def bucket_region(self, bucket: str, role: str) -> str:
        if bucket not in self.world.buckets:
            raise AwsError(f"{role} bucket {bucket} does not exist", code="NoSuchBucket",
                           hint=f"create it in {self.region}, or fix s3[].{role} in dr.yaml")
        return self.world.buckets[bucket]

    def list_objects(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        self._bucket(bucket, "listing", f"bucket {bucket}")
        with self.world.lock:
            found = sorted((k, o) for (b, k), o in self.world.objects.items() if b == bucket and k.startswith(prefix))
        for key, obj in sorted(found, key=lambda item: item[0].encode()):
            yield ObjectInfo(key, len(obj.body), obj.etag, obj.modified)

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return sorted(o.key for o in self.list_objects(bucket, prefix))

    def head(self, bucket: str, key: str, if_match: str | None = None) -> dict[str, Any]:
        obj = self._object(bucket, key, "reading")
        if if_match is not None and if_match != obj.etag:
            raise _error("412", "Precondition Failed", "reading", f"s3://{bucket}/{key}", self.region)
        return {"ContentLength": len(obj.body), "ETag": obj.etag, "LastModified": obj.modified,
                "Metadata": dict(obj.fields.get("Metadata", {})),
                **{k: v for k, v in obj.fields.items() if k != "Metadata"}}

    def tags(self, bucket: str, key: str) -> dict[str, str]:
        return dict(self._object(bucket, key, "reading tags of").tags)

    def get(self, bucket: str, key: str) -> Any:
        import io

        obj = self._object(bucket, key, "reading")
        return io.BytesIO(obj.body)

    def put(self, bucket: str, key: str, body: bytes, kms_key_arn: str | None = None, **fields: Any) -> str:
        self._bucket(bucket, "writing", f"s3://{bucket}/{key}")
        tagging = fields.pop("Tagging", "")
        if kms_key_arn:
            fields.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key_arn)
        tags = dict(pair.split("=", 1) for pair in tagging.split("&") if pair)
        etag = f'"{hashlib.md5(body).hexdigest()}"'  # noqa: S324 - S3's ETag, not security
        with self.world.lock:
            self.world.objects[(bucket, key)] = _Object(body, etag, self.world.now(), fields, tags)
        return etag

    def delete(self, bucket: str, key: str) -> None:
        self._bucket(bucket, "deleting", f"s3://{bucket}/{key}")
        self.world.objects.pop((bucket, key), None)

    def uploads(self, bucket: str, prefix: str) -> list[Upload]:
        self._bucket(bucket, "listing unfinished uploads in", f"s3://{bucket}/{prefix}")
        return []

    def copy(self, source_bucket: str, obj: ObjectInfo, bucket: str, kms_key_arn: str) -> str | None:
        where = ("copying", f"s3://{source_bucket}/{obj.key}")
        with self.world.lock:
            try:
                source = self._object(source_bucket, obj.key, where[0])
            except AwsError as exc:
                raise _error("NoSuchKey", "The specified key does not exist", *where, self.region) \
                    if exc.code in GONE else exc
            if source.etag != obj.etag:
                raise _error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
                             *where, self.region)
            self._bucket(bucket, *where)
            fields = {**source.fields, "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn}
            self.world.objects[(bucket, obj.key)] = _Object(source.body, source.etag, self.world.now(), fields,
                                                            dict(source.tags))
        return None


class FakeCfn:
    def __init__(self, world: _World, region: str):
        self.world, self.region = world, region

    def describe(self, name: str) -> Stack | None:
        with self.world.lock:
            for (region, stack_name), stack in self.world.stacks.items():
                if region == self.region and name in (stack_name, stack.id):
                    return stack
        return None

    def list_stacks(self) -> list[Stack]:
        return [s for (region, _), s in sorted(self.world.stacks.items()) if region == self.region]

    def create(self, args: Mapping[str, Any]) -> str:
        name = args["StackName"]
        with self.world.lock:
            if (self.region, name) in self.world.stacks:
                raise _error("AlreadyExistsException", f"Stack [{name}] already exists", "creating stack",
                             name, self.region)
            stack_id = f"arn:aws:cloudformation:{self.region}:{ACCOUNT}:stack/{name}/{next(self.world.ticks)}"
            self._event(stack_id, name, "CREATE_IN_PROGRESS", "User Initiated")
            self.world.stacks[(self.region, name)] = Stack(
                id=stack_id, name=name, status="CREATE_COMPLETE",
                parameters={p["ParameterKey"]: str(p.get("ParameterValue", "")) for p in args.get("Parameters", [])},
                tags={t["Key"]: t["Value"] for t in args.get("Tags", [])}, created=self.world.now())
            self.world.templates[stack_id] = args.get("TemplateBody", "")
            self._event(stack_id, name, "CREATE_COMPLETE")
            return stack_id

    def update(self, args: Mapping[str, Any]) -> bool:
        with self.world.lock:
            stack = self.describe(args["StackName"])
            if stack is None:
                raise _error("ValidationError", f"Stack with id {args['StackName']} does not exist",
                             "updating stack", args["StackName"], self.region)
            params = {p["ParameterKey"]: stack.parameters.get(p["ParameterKey"], "") if p.get("UsePreviousValue")
                      else str(p.get("ParameterValue", "")) for p in args.get("Parameters", [])}
            body = args.get("TemplateBody", "")
            tags = {t["Key"]: t["Value"] for t in args["Tags"]} if "Tags" in args else stack.tags
            if params == stack.parameters and body == self.world.templates.get(stack.id) and tags == stack.tags:
                return False
            self.world.stacks[(self.region, stack.name)] = replace(stack, parameters=params, tags=tags,
                                                                   status="UPDATE_COMPLETE")
            self.world.templates[stack.id] = body
            self._event(stack.id, stack.name, "UPDATE_COMPLETE")
            return True

    def delete(self, stack_id: str) -> None:
        with self.world.lock:
            stack = self.describe(stack_id)
            if stack is not None:
                del self.world.stacks[(self.region, stack.name)]
                self._event(stack.id, stack.name, "DELETE_COMPLETE")

    def template_body(self, stack_id: str, name: str | None = None) -> str:
        stack = self.describe(stack_id)
        return self.world.templates.get(stack.id, "") if stack is not None else ""

    def validate(self, body: str, name: str) -> None:
        return None

    def events(self, stack_id: str) -> list[StackEvent]:
        return list(self.world.events.get(stack_id, []))

    def resources(self, stack_id: str) -> list[dict[str, Any]]:
        return []

    def force(self, name: str, status: str, reason: str | None = None,
              failed: tuple[str, str, str] | None = None) -> None:
        """For tests: the stack is now `status`; `failed` = (logical id, type, reason) adds the
        *_FAILED event CloudFormation would have recorded."""
        with self.world.lock:
            stack = self.describe(name)
            assert stack is not None, name
            self.world.stacks[(self.region, stack.name)] = replace(stack, status=status, status_reason=reason)
            if failed is not None:
                logical, rtype, why = failed
                failed_as = "CREATE_FAILED" if status == "ROLLBACK_COMPLETE" else "UPDATE_FAILED"
                self._event(stack.id, logical, failed_as, why, rtype)

    def _event(self, stack_id: str, logical: str, status: str, reason: str = "",
               rtype: str = "AWS::CloudFormation::Stack") -> None:
        self.world.events.setdefault(stack_id, []).append(StackEvent(self.world.now(), logical, rtype, status, reason))


class FakeKms:
    def __init__(self, world: _World, region: str):
        self.world, self.region = world, region

    def create_key(self, alias: str, description: str) -> str:
        arn = f"arn:aws:kms:{self.region}:{ACCOUNT}:key/{next(self.world.ticks):08d}"
        meta = {"Arn": arn, "KeyManager": "CUSTOMER", "KeyState": "Enabled", "KeyUsage": "ENCRYPT_DECRYPT",
                "KeySpec": "SYMMETRIC_DEFAULT", "Description": description}
        for ref in (alias, arn):
            self.world.keys[(self.region, ref)] = meta
        return arn

    def describe(self, ref: str) -> dict[str, Any]:
        meta = self.world.keys.get((self.region, ref))
        if meta is None:
            raise _error("NotFoundException", f"Key '{ref}' does not exist", "describing key", ref, self.region)
        return dict(meta)


class FakeSns:
    def __init__(self, world: _World, region: str):
        self.world, self.region = world, region

    def publish(self, topic_arn: str, subject: str, message: str) -> str | None:
        self.world.published.append({"topic": topic_arn, "subject": subject, "message": message})
        return f"msg-{len(self.world.published)}"
