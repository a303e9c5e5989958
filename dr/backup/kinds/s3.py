"""S3 buckets: new and changed objects copied to the DR bucket under the DR key (the engine:
dr/backup/s3.py), one manifest per run in the state store (what `dr backup list` shows),
checked against the source by `dr backup verify` (--deep: headers, tags, key)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from dr.backup.kind import BackupKind, KindRun
from dr.backup.plan import Age, PlanItem, Table
from dr.clock import iso, parse_iso
from dr.config import Config, S3Resource
from dr.errors import DrError, Interrupted
from dr.permissions import Grant

if TYPE_CHECKING:  # the engine loads when used: the registry is imported by `dr --help`
    from dr.context import Context
    from dr.state.records import ResourceResult


class S3BackupKind(BackupKind):
    name = "s3"
    verify_takes = frozenset({"deep"})
    list_rank = 30
    features = {
        # dr/backup/s3.py: GetBucketLocation on both; ListObjectsV2 on both; HeadObject,
        # GetObjectTagging on the source; CopyObject (TaggingDirective COPY) /
        # CreateMultipartUpload + UploadPartCopy (a source VersionId) + Complete/
        # AbortMultipartUpload into the destination under the DR key; readiness reads the
        # destination's versioning and default encryption.
        "s3": (
            Grant("s3_source_buckets", ("s3:ListBucket", "s3:GetBucketLocation")),
            Grant("s3_source_objects", ("s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging")),
            Grant("s3_destination_buckets", ("s3:ListBucket", "s3:GetBucketLocation",
                                             "s3:GetBucketVersioning", "s3:GetEncryptionConfiguration")),
            Grant("s3_destination_objects", ("s3:PutObject", "s3:PutObjectTagging",
                                             "s3:AbortMultipartUpload", "s3:GetObject",
                                             "s3:GetObjectTagging")),  # the last two: verify --deep
            Grant("dr_key_via_s3", ("kms:GenerateDataKey", "kms:Decrypt")),
            Grant("primary_key_via_s3", ("kms:Decrypt",)),
        ),
        # s3[].delete: mirror deletes destination objects whose source is gone (after delete_grace).
        "s3-mirror": (Grant("s3_destination_objects", ("s3:DeleteObject",)),),
    }

    def resources(self, config: Config) -> Sequence[S3Resource]:
        return config.s3

    def record_kind(self, resource: S3Resource) -> str:
        return "s3"

    def needs_dr_key(self, resource: S3Resource) -> bool:
        return True

    def features_for(self, config: Config, resource: S3Resource) -> list[str]:
        return ["s3"] + (["s3-mirror"] if resource.delete == "mirror" else [])

    # -- run

    def observe(self, ctx: Context, resource: S3Resource, now: datetime, count: bool):
        """The buckets checked (and, for a dry run, the listings compared): s3.plan_item."""
        from dr.backup import s3

        return s3.plan_item(ctx.aws, ctx.config, resource, None, count=count)

    def plan(self, observation, config, dr_key, key_error) -> PlanItem:
        o = observation
        return PlanItem(
            name=o.name, kind=self.name, record_kind="s3",
            summary=f"s3://{o.source}/{o.prefix} -> s3://{o.destination}/{o.prefix}",
            actions=() if key_error else o.actions, blocked=key_error or o.blocked,
            fields={"source": o.source, "destination": o.destination, "prefix": o.prefix})

    def execute(self, ctx: Context, item: PlanItem, resource: S3Resource, run: KindRun) -> None:
        from dr.backup import s3

        recorded = run.resource
        sync = s3.S3Sync(ctx.aws, ctx.config, resource, run.dr_key.arn, ctx.clock, run.cancel,
                         ctx.store)
        with run.step("copy", f"s3://{resource.source}/{resource.prefix} -> "
                              f"s3://{resource.destination}/{resource.prefix}") as step:
            try:
                stats = sync.run()
            except Interrupted:
                run.result.summary = sync.stats.summary()
                raise
            except DrError as exc:  # what was copied is recorded, and the manifest written
                step.fail(str(exc))
                recorded.fail(str(exc))
                stats = sync.stats
            else:
                if stats.failed:
                    step.fail(f"{len(stats.failed)} object(s) failed to copy")
                    recorded.fail(f"{len(stats.failed)} object(s) failed to copy; first: "
                                  f"{stats.failed[0]['key']}: {stats.failed[0]['reason']}")
        if recorded.status == "running":
            recorded.complete()
        result = run.result
        result.summary = stats.summary()
        result.summary["seconds"] = round(
            (parse_iso(result.finished_at) - parse_iso(result.started_at)).total_seconds(), 3)
        if stats.newest_source_modified is not None:
            result.recovery_points.append({
                "id": run.record.run_id, "region": ctx.config.regions.dr, "role": "copy",
                "arn": f"arn:aws:s3:::{resource.destination}/{resource.prefix}",
                "created": iso(stats.newest_source_modified), "kms_key_id": run.dr_key.arn})
        run.save()
        s3.save_manifest(ctx.store, resource, run.record, result)

    def result_line(self, result: ResourceResult) -> str:
        sm = result.summary
        return (f": {sm.get('copied', 0)} copied ({sm.get('copied_bytes', 0)} bytes), "
                f"{sm.get('skipped_in_sync', 0)} in sync, {sm.get('failed', 0)} failed"
                if sm else "")

    # -- list, prune, verify

    def points(self, ctx: Context, resources: Sequence[S3Resource]) -> list[dict]:
        from dr.backup import s3

        return [m for r in resources for m in s3.list_manifests(ctx.store, r.name)]

    def list_table(self, points: list[dict], now: datetime, show_all: bool) -> Table:
        runs = sorted(points, key=lambda m: m["run_id"].split("-", 1)[-1], reverse=True)
        table = Table("s3_runs", ("S3", "RUN", "STATUS", "AGE", "COPIED", "IN-SYNC", "FAILED",
                                  "BYTES", "NEWEST-CHANGE-COPIED"), data=runs)
        for m in runs:
            newest = m.get("newest_source_modified")
            table.rows.append((
                m["name"], m["run_id"], m.get("status", "?"),
                Age(now - parse_iso(m["finished_at"])) if m.get("finished_at") else "<running>",
                str(m.get("copied", 0)), str(m.get("skipped_in_sync", 0)),
                str(m.get("failed", 0)), str(m.get("copied_bytes", 0)),
                Age(now - parse_iso(newest) if newest else None)))
        return table

    def plan_prune(self, points, resources, now):
        return []  # the DR bucket is versioned; its lifecycle rules expire old versions

    def prune(self, ctx, resources, now, dry_run):
        return None

    def verify(self, ctx: Context, resources: Sequence[S3Resource], *, backup, deep):
        from dr.backup import s3
        from dr.aws.kms import resolve_dr_key

        how = None
        if deep is not None:
            how = s3.Deep(resolve_dr_key(ctx.aws, ctx.config.kms.dr_key, ctx.config.regions.dr).arn,
                          None if deep == "all" else int(deep))
        return {r.name: s3.verify(ctx.aws, ctx.config, r, how) for r in resources}

    # -- readiness

    def readiness_observe(self, ctx: Context, resource: S3Resource):
        from dr.backup import s3

        try:
            problems = s3.readiness_problems(ctx.aws, ctx.config, resource)
        except DrError as exc:
            problems = [str(exc)]
        synced = [m["in_sync_as_of"] for m in s3.list_manifests(ctx.store, resource.name)
                  if m.get("in_sync_as_of")]
        return resource, problems, max(synced, default=None)

    def readiness(self, observation, config: Config, now: datetime):
        from dr.failover.readiness import Check, fresh

        b, problems, synced = observation
        return [Check(f"s3:{b.name}", not problems, "; ".join(problems) or
                      f"s3://{b.destination} is in {config.regions.dr}, versioned, "
                      "encrypted with SSE-KMS by default"),
                fresh(f"s3:{b.name}:copy", synced, now, config,
                      f"s3://{b.destination} was fully in sync")]


