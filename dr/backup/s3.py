"""S3 copies to the DR region: list both sides, diff as two streams, copy server-side under the DR key.

`check_buckets` proves where the buckets are before anything is copied; `S3Sync.run` streams the
diff into a bounded pool of copy workers (CopyObject, or UploadPartCopy in parallel parts above
the multipart threshold), applies the delete policy, and returns figures for the run record.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from dr.aws import AwsSession
from dr.aws.s3 import GONE, prefetch, server_side_copy
from dr.backup import s3_deep
from dr.aws.s3 import ObjectInfo
from dr.backup.s3_diff import Change, ListingOrderError, diff
from dr.clock import Clock, iso, parse_iso
from dr.config import Config, S3Resource
from dr.errors import AwsError, DrError, Interrupted, OperationFailed
from dr.state.base import StateStore

log = logging.getLogger(__name__)

SAMPLE = 1000  # keys recorded per category in a run manifest
CHANGED = ("PreconditionFailed", "412")


def check_buckets(session: AwsSession, config: Config, resource: S3Resource) -> None:
    """Before any copy: the source is in the primary region, the destination in the DR region."""
    for bucket, region, role in ((resource.source, config.regions.primary, "source"),
                                 (resource.destination, config.regions.dr, "destination")):
        actual = session.s3(region).bucket_region(bucket, role)
        if actual != region:
            raise OperationFailed(
                f"{role} bucket {bucket} is in {actual}, not in {region}",
                hint=("the copy must live in the DR region: create the destination there"
                      if role == "destination" else "set regions.primary to the bucket's region"))


def changes(session: AwsSession, config: Config, resource: S3Resource) -> Iterator[Change]:
    """The diff of source and destination, with both listings fetched ahead in the background:
    the two sides list in parallel, and copy workers never wait for the next page."""
    src, dst = session.s3(config.regions.primary), session.s3(config.regions.dr)
    return _in_key_order(diff(prefetch(src.list_objects(resource.source, resource.prefix)),
                              prefetch(dst.list_objects(resource.destination, resource.prefix))),
                         resource)


def _in_key_order(changes: Iterator[Change], resource: S3Resource) -> Iterator[Change]:
    """An endpoint that lists a key twice or out of order (LocalStack 4.14 at some page
    boundaries) fails this resource like any S3 error, instead of escaping as a crash."""
    try:
        yield from changes
    except ListingOrderError as exc:
        raise OperationFailed(
            f"comparing s3://{resource.source}/{resource.prefix} with "
            f"s3://{resource.destination}/{resource.prefix}: {exc}",
            hint="S3 lists every key once, in UTF-8 byte order; this endpoint did not, so nothing "
                 "after that key was compared (an S3 emulator's bug?)") from exc


@dataclass
class S3RunStats:
    """What one run did; `summary()` is what goes in the run record and the manifest."""

    copied: int = 0
    copied_bytes: int = 0
    same: int = 0
    extra: int = 0
    deleted: int = 0
    pending_delete: int = 0
    failed: list[dict] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    copied_sample: list[dict] = field(default_factory=list)
    newest_source_modified: datetime | None = None
    listed_at: datetime | None = None  # when listing began: with no failure, in sync as of then
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def present(self, modified: datetime) -> None:
        if self.newest_source_modified is None or modified > self.newest_source_modified:
            self.newest_source_modified = modified

    def summary(self) -> dict:
        return {
            "copied": self.copied, "copied_bytes": self.copied_bytes, "skipped_in_sync": self.same,
            "only_in_destination": self.extra, "deleted": self.deleted,
            "pending_delete": self.pending_delete, "failed": len(self.failed),
            "failures": self.failed[:SAMPLE], "vanished": self.vanished[:SAMPLE],
            "vanished_count": len(self.vanished), "copied_sample": self.copied_sample[:SAMPLE],
            "newest_source_modified": iso(self.newest_source_modified)
            if self.newest_source_modified else None,
            "in_sync_as_of": iso(self.listed_at) if self.listed_at and not self.failed else None,
        }


class S3Sync:
    """One bucket pair, one run."""

    def __init__(self, session: AwsSession, config: Config, resource: S3Resource, dr_key_arn: str,
                 clock: Clock, cancel: threading.Event, store: StateStore):
        self.session, self.config, self.r = session, config, resource
        self.key_arn, self.clock, self.cancel, self.store = dr_key_arn, clock, cancel, store
        self.src = session.s3(config.regions.primary)
        self.dst = session.s3(config.regions.dr)
        self.stats = S3RunStats()

    # -- listing and planning

    def changes(self) -> Iterator[Change]:
        return changes(self.session, self.config, self.r)

    # -- the run

    def run(self) -> S3RunStats:
        started = self.stats.listed_at = self.clock.now()
        extra_keys: list[str] = []
        in_flight = threading.BoundedSemaphore(self.r.concurrency * 4)
        pool = ThreadPoolExecutor(max_workers=self.r.concurrency, thread_name_prefix="dr-s3")
        futures: list[Future] = []
        try:
            for change in self.changes():
                if self.cancel.is_set():
                    raise KeyboardInterrupt
                if change.action == "same":
                    with self.stats.lock:
                        self.stats.same += 1
                        self.stats.present(change.source.last_modified)
                elif change.action == "extra":
                    self.stats.extra += 1
                    if self.r.delete == "mirror":
                        extra_keys.append(change.key)
                else:
                    while not in_flight.acquire(timeout=0.5):
                        if self.cancel.is_set():
                            raise KeyboardInterrupt
                    future = pool.submit(self._copy_guarded, change.source)
                    future.add_done_callback(lambda _f: in_flight.release())
                    futures.append(future)
                    futures = [f for f in futures if not f.done()]
            for future in futures:
                future.result()
        except KeyboardInterrupt:
            self.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise Interrupted(f"interrupted copying {self.r.source} to {self.r.destination}",
                              hint="run `dr backup run` again: it copies only what is still "
                                   "missing") from None
        pool.shutdown(wait=True)
        if self.r.delete == "mirror":
            self._mirror_deletes(extra_keys, started)
        return self.stats

    def _copy_guarded(self, obj: ObjectInfo) -> None:
        if self.cancel.is_set():
            return
        try:
            version, modified = self.copy(obj)
        except DrError as exc:
            if getattr(exc, "code", "") in GONE:
                log.info("%s: %s was deleted in the source during the run; skipped", self.r.name, obj.key)
                with self.stats.lock:
                    self.stats.vanished.append(obj.key)
                return
            with self.stats.lock:
                self.stats.failed.append({"key": obj.key, "reason": str(exc)})
            return
        except Exception as exc:  # a bug or an unexpected answer: recorded, the run goes on
            log.exception("%s: unexpected error copying %s", self.r.name, obj.key)
            with self.stats.lock:
                self.stats.failed.append({"key": obj.key, "reason": f"unexpected error: {exc!r}"})
            return
        with self.stats.lock:
            self.stats.copied += 1
            self.stats.copied_bytes += obj.size
            self.stats.present(modified)
            if len(self.stats.copied_sample) < SAMPLE:
                self.stats.copied_sample.append(
                    {"key": obj.key, "etag": obj.etag, "version_id": version, "size": obj.size})

    # -- copying

    def copy(self, obj: ObjectInfo) -> tuple[str | None, datetime]:
        """Copy one object as listed; if it changed since the listing, copy what is there now.

        Returns (source version id, source LastModified of what was copied)."""
        try:
            return self._copy_as_listed(obj)
        except AwsError as exc:
            if exc.code not in CHANGED:
                raise
        head = self.src.head(self.r.source, obj.key)
        fresh = ObjectInfo(obj.key, head["ContentLength"], head["ETag"], head["LastModified"])
        return self._copy_as_listed(fresh)

    def _copy_as_listed(self, obj: ObjectInfo) -> tuple[str | None, datetime]:
        return server_side_copy(self.src, self.r.source, self.dst, self.r.destination, obj, self.key_arn,
                                self.r.multipart_threshold, self.cancel)

    # -- delete: mirror

    def _mirror_deletes(self, extra_keys: list[str], now: datetime) -> None:
        """Delete a destination object only once its source has been gone for delete_grace."""
        key = f"s3/{self.r.name}/absent.json"
        absent_since = (self.store.get_json(key) or {}).get("absent_since", {})
        current = set(extra_keys)
        tracked = {k: v for k, v in absent_since.items() if k in current}
        due = []
        for k in extra_keys:
            first_seen = parse_iso(tracked.setdefault(k, iso(now)))
            if now - first_seen >= self.r.delete_grace:
                due.append(k)
        for k in due:
            try:
                self.dst.delete(self.r.destination, k)
                tracked.pop(k)
                self.stats.deleted += 1
            except DrError as exc:
                self.stats.failed.append({"key": k, "reason": f"delete failed: {exc}"})
        self.stats.pending_delete = len(tracked)
        self.store.put_json(key, {"absent_since": tracked})


# ---------------------------------------------------------------------------- plan, manifest, verify


@dataclass(frozen=True)
class S3PlanItem:
    name: str
    source: str
    destination: str
    prefix: str
    actions: tuple[str, ...] = ()
    blocked: str | None = None



def plan_item(session: AwsSession, config: Config, resource: S3Resource, key_error: str | None,
              count: bool) -> S3PlanItem:
    """Check the buckets; with `count` (dry run), also diff the listings and say what would move."""
    item = S3PlanItem(resource.name, resource.source, resource.destination, resource.prefix)
    if key_error:
        return _replace(item, blocked=key_error)
    try:
        check_buckets(session, config, resource)
    except DrError as exc:
        return _replace(item, blocked=str(exc))
    if not count:
        return _replace(item, actions=(f"copy new and changed objects to s3://{resource.destination}"
                                       f"/{resource.prefix} under the DR key",))
    copies = nbytes = extra = same = 0
    sample: list[str] = []
    try:
        for change in changes(session, config, resource):
            if change.action == "copy":
                copies, nbytes = copies + 1, nbytes + change.source.size
                if len(sample) < 10:
                    sample.append(f"{change.key} ({change.reason})")
            elif change.action == "extra":
                extra += 1
            else:
                same += 1
    except DrError as exc:
        return _replace(item, blocked=str(exc))
    actions = [f"copy {copies} object(s), {nbytes} bytes, to s3://{resource.destination} under "
               f"the DR key; {same} already in sync"]
    actions += [f"  e.g. {k}" for k in sample]
    if extra:
        actions.append(f"{extra} object(s) only in the destination: "
                       + ("kept (delete: keep)" if resource.delete == "keep" else
                          "deleted once their source has been gone for the grace period"))
    return _replace(item, actions=tuple(actions))


def _replace(item: S3PlanItem, **changes) -> S3PlanItem:
    from dataclasses import replace

    return replace(item, **changes)


def manifest_key(name: str, run_id: str) -> str:
    return f"manifests/s3/{name}/{run_id}.json"


def save_manifest(store: StateStore, resource: S3Resource, record, result) -> None:
    store.put_json(manifest_key(resource.name, record.run_id), {
        "format": "dr-s3-manifest/1", "run_id": record.run_id, "name": resource.name,
        "source": resource.source, "destination": resource.destination,
        "prefix": resource.prefix, "status": result.status, "error": result.error,
        "started_at": result.started_at, "finished_at": result.finished_at, **result.summary})


def list_manifests(store: StateStore, name: str, limit: int = 20) -> list[dict]:
    """This resource's newest run manifests, newest first."""
    keys = store.list_keys(f"manifests/s3/{name}/")[-limit:]
    return [m for m in (store.get_json(k) for k in reversed(keys)) if m]


@dataclass
class VerifyResult:
    missing: int = 0
    different: int = 0
    extra: int = 0
    same: int = 0
    examples: list[str] = field(default_factory=list)
    deep: s3_deep.DeepResult | None = None  # with --deep: metadata, tags and key of a sample

    @property
    def ok(self) -> bool:
        return not (self.missing or self.different or (self.deep and self.deep.different))

    def to_dict(self) -> dict:
        return {"ok": self.ok, "missing": self.missing, "different": self.different,
                "only_in_destination": self.extra, "in_sync": self.same,
                "examples": self.examples,
                **({"deep": self.deep.to_dict()} if self.deep is not None else {})}


@dataclass(frozen=True)
class Deep:
    """`--deep`: check `sample` in-sync objects chosen at random (None: every one) against the
    DR key's ARN."""

    dr_key_arn: str
    sample: int | None = 100


def verify(session: AwsSession, config: Config, resource: S3Resource,
           deep: Deep | None = None) -> VerifyResult:
    """Compare the two listings now: what is missing or different in the DR region. With `deep`,
    also HEAD and read the tags of both sides of a sample of the objects in sync."""
    check_buckets(session, config, resource)
    result = VerifyResult()

    def listed_in_sync() -> Iterator[ObjectInfo]:
        for change in changes(session, config, resource):
            if change.action == "same":
                result.same += 1
                yield change.source
                continue
            if change.action == "extra":
                result.extra += 1
                continue
            if change.destination is None:
                result.missing += 1
                label = "missing"
            else:
                result.different += 1
                label = change.reason
            if len(result.examples) < 20:
                result.examples.append(f"{change.key}: {label}")

    if deep is None:
        for _ in listed_in_sync():
            pass
        return result
    chosen = s3_deep.sample(listed_in_sync(), deep.sample)
    result.deep = s3_deep.check(session, config, resource, chosen, deep.dr_key_arn)
    return result


def readiness_problems(session: AwsSession, config: Config, resource: S3Resource) -> list[str]:
    """What stops the DR bucket from being a trustworthy copy: empty when ready."""
    check_buckets(session, config, resource)
    bucket = resource.destination
    dst = session.s3(config.regions.dr)
    problems = []
    if dst.versioning(bucket) != "Enabled":
        problems.append(f"versioning is off on {bucket}: a bad copy or a deletion could not be undone "
                        f"(aws s3api put-bucket-versioning --bucket {bucket} "
                        "--versioning-configuration Status=Enabled)")
    algos = dst.default_encryption(bucket)
    if algos is None:
        problems.append(f"default encryption is off on {bucket}: set SSE-KMS with the DR key")
    elif not algos & {"aws:kms", "aws:kms:dsse"}:
        problems.append(f"default encryption on {bucket} is {', '.join(sorted(algos))}, not "
                        "SSE-KMS with the DR key")
    return problems
