"""MySQL/MariaDB servers: a consistent logical dump, compressed and encrypted, streamed to a
destination (the engine: dr/backup/mysql.py); backups listed and pruned from their authenticated
manifests, proven restorable by `dr backup verify` (restored into a scratch database and
compared; dr/backup/verified.py keeps the verdicts), restored by the runbook step
`mysql.restore` and `dr restore mysql`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from typing import TYPE_CHECKING

from dr.backup.kind import BackupKind, KindRun, PrunePart
from dr.backup.plan import Age, PlanItem, Table, Verb, When
from dr.backup.retention import Candidate, apply_policy
from dr.clock import iso, parse_iso_or_none
from dr.config import Config, MysqlResource, format_duration
from dr.errors import DrError, OperationFailed, UsageError
from dr.permissions import Grant

if TYPE_CHECKING:  # the engine loads when used: the registry is imported by `dr --help`
    from dr.backup.leases import RunLease
    from dr.context import Context
    from dr.state.recorder import ResourceRecorder
    from dr.state.records import ResourceResult, RunRecord

log = logging.getLogger(__name__)


class MysqlBackupKind(BackupKind):
    name = "mysql"
    restore_steps = ("mysql.restore",)
    verify_takes = frozenset({"backup"})
    list_rank = 20
    verifies_backups = True
    leaves_leftovers = True  # files, uploads, scratch databases (dr.backup.cleanup sweeps them)
    features = {
        # dr/backup/destination.py: GetBucketLocation (check), multipart upload (Create/Upload/
        # Complete/Abort = PutObject, AbortMultipartUpload) under the DR key, GetObject (restore,
        # verify), ListObjectsV2, DeleteObject (prune); dr/backup/cleanup.py: ListMultipartUploads
        # and AbortMultipartUpload for the uploads of killed runs.
        "mysql-s3": (
            Grant("backup_buckets", ("s3:ListBucket", "s3:GetBucketLocation",
                                     "s3:ListBucketMultipartUploads")),
            Grant("backup_objects", ("s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                     "s3:AbortMultipartUpload")),
            Grant("dr_key_via_s3", ("kms:GenerateDataKey", "kms:Decrypt")),
        ),
        # dr/crypto/keys.py KmsKeyProvider: the envelope's data key (GenerateDataKey, Decrypt)
        # with the encryption context {dr:backup, dr:kind: mysql}. Not needed with key_file.
        "mysql-kms": (Grant("dr_key_envelope", ("kms:GenerateDataKey", "kms:Decrypt")),),
    }

    def resources(self, config: Config) -> Sequence[MysqlResource]:
        return config.mysql

    def record_kind(self, resource: MysqlResource) -> str:
        return "mysql"

    def needs_dr_key(self, resource: MysqlResource) -> bool:
        return resource.key_file is None or resource.destination.startswith("s3://")

    def features_for(self, config: Config, resource: MysqlResource) -> list[str]:
        return (["mysql-s3"] if resource.destination.startswith("s3://") else []) + \
            (["mysql-kms"] if resource.key_file is None else [])

    # -- run

    def observe(self, ctx: Context, resource: MysqlResource, now: datetime, count: bool):
        return resource, now  # the server is read when the dump starts

    def plan(self, observation, config, dr_key, key_error) -> PlanItem:
        from dr.backup import mysql

        r, now = observation
        uses_kms = r.key_file is None
        bid = mysql.backup_id(r.name, r.schedule.slot_start(now))
        return PlanItem(
            name=r.name, kind=self.name, record_kind="mysql",
            summary=f"mysql {', '.join(r.databases)} -> {r.destination} as {bid}",
            actions=(f"dump {', '.join(r.databases)} from {r.server.host}:{r.server.port} (one "
                     f"consistent snapshot), compress (zstd), encrypt "
                     f"({'KMS data key' if uses_kms else 'local key file'}), stream to "
                     f"{r.destination}",),
            blocked=key_error if (key_error and uses_kms) else None,
            fields={"source": r.server.host, "databases": list(r.databases),
                    "destination": r.destination, "backup_id": bid})

    def execute(self, ctx: Context, item: PlanItem, resource: MysqlResource, run: KindRun) -> None:
        from dr.backup import mysql

        with run.step("dump", f"{resource.server.host} -> {resource.destination}"):
            summary = mysql.run_backup(ctx, resource, run.dr_key.arn if run.dr_key else None,
                                       run.now, lease=run.lease)
        run.resource.note(**summary)
        run.resource.add_point({
            "id": summary["backup_id"], "role": "copy", "created": summary["created"],
            "region": ctx.config.regions.dr if resource.destination.startswith("s3://")
            else "local", "arn": resource.destination, "kms_key_id": summary.get("key_id")})

    def result_line(self, result: ResourceResult) -> str:
        sm = result.summary
        return (f" -> {sm['backup_id']}: {sm.get('rows')} rows, {sm.get('stored_bytes')} "
                f"bytes stored" if sm.get("backup_id") else "")

    # -- list and prune

    def points(self, ctx: Context, resources: Sequence[MysqlResource]) -> list:
        """(backup, its verification or None) for every backup, newest first."""
        from dr.backup import mysql, verified

        found = []
        for r in resources:
            checks = verified.load(ctx.store, r.name)
            found += [(b, checks.get(b.id)) for b in
                      mysql.list_backups(mysql.destination(ctx, r, None), r)]
        return sorted(found, key=lambda pair: pair[0].created, reverse=True)

    def list_table(self, points: list, now: datetime, show_all: bool) -> Table:
        table = Table("mysql_backups", ("MYSQL", "BACKUP", "CREATED", "AGE", "STORED-BYTES",
                                        "ROWS", "KEY", "VERIFIED"))
        for b, check in sorted(points, key=lambda pair: pair[0].created, reverse=True):
            table.rows.append((b.resource, b.id, When(b.created), Age(now - b.created),
                               str(b.manifest.get("stored_bytes")),
                               str(b.manifest.get("dump", {}).get("rows")),
                               b.manifest.get("encryption", {}).get("kind", "?"),
                               _verified_cell(check)))
            table.data.append({"resource": b.resource, "id": b.id,
                               "created": b.created.isoformat(),
                               "stored_bytes": b.manifest.get("stored_bytes"),
                               "rows": b.manifest.get("dump", {}).get("rows"),
                               "verification": check})
        return table

    def plan_prune(self, points, resources, now):
        """PURE: `points` are one resource's authenticated backups; retention decides."""
        (resource,) = resources
        return apply_policy([Candidate(b.id, b.created) for b in points], resource.retention, now)

    def prune(self, ctx: Context, resources, now: datetime, dry_run: bool):
        """Retention over backups whose manifests authenticate (an edited `created` must not
        make prune delete the newest backup); a backup whose manifest does not is never deleted
        and never counted, and is reported. The manifest goes first, so a crash never leaves a
        listed backup without its data."""
        from dr.backup import mysql, verified

        table = Table("mysql", ("MYSQL", "BACKUP", "CREATED", "ACTION", "WHY"))
        done = PrunePart(table)
        for resource in resources:
            dest = mysql.destination(ctx, resource, None)
            proven, problems = mysql.authenticated_backups(dest, resource,
                                                           mysql.key_provider(ctx, resource))
            backups = {b.id: b for b in proven}
            rows = [{"resource": resource.name, "id": "?", "created": "", "action": "keep",
                     "reasons": [f"not deleted: its manifest does not authenticate ({problem})"]}
                    for problem in problems]
            for problem in problems:
                log.warning("%s: %s", resource.name, problem)
            gone: list[str] = []
            decisions = self.plan_prune(list(backups.values()), [resource], now)
            done.decisions += decisions
            for d in decisions:
                rows.append({"resource": resource.name, "id": d.id, "created": iso(d.created),
                             "action": "keep" if d.keep else "delete", "reasons": list(d.reasons)})
                if d.keep or dry_run:
                    continue
                try:
                    dest.delete(f"{resource.name}/{d.id}{mysql.MANIFEST_SUFFIX}")
                    dest.delete(backups[d.id].data_name)
                    done.deleted.append(dest.describe(backups[d.id].data_name))
                    gone.append(d.id)
                except DrError as exc:
                    done.failed[d.id] = str(exc)
            table.data += rows
            if gone:
                try:
                    verified.forget(ctx.store, resource.name, gone)
                except DrError as exc:
                    log.warning("%s: could not forget the verifications of pruned backups: %s",
                                resource.name, exc)
        table.rows = [(m["resource"], m["id"], When(m["created"] or None),
                       Verb(m["action"] == "keep"), "; ".join(m["reasons"])) for m in table.data]
        return done

    # -- verify

    def verify(self, ctx: Context, resources, *, backup, deep):
        record = verify_mysql(ctx, [(r, backup) for r in resources])
        return {result.name: MysqlVerify(result.summary) for result in record.results}

    def verify_newest(self, ctx: Context, resource: MysqlResource):
        target = newest_unverified(ctx, resource)
        return None if target is None else verify_mysql(ctx, [(resource, target.id)])

    # -- readiness

    def readiness_observe(self, ctx: Context, m: MysqlResource):
        from dr.backup import mysql, verified

        try:
            dest = mysql.destination(ctx, m, None)
            dest.check()
            # only what a manifest proves counts: an edited `created` must not look fresh
            backups, problems = mysql.authenticated_backups(dest, m, mysql.key_provider(ctx, m))
        except DrError as exc:
            return m, str(exc), [], [], None
        try:
            done = verified.load(ctx.store, m.name) if backups else {}
        except DrError as exc:
            done = exc
        return m, None, backups, problems, done

    def readiness(self, observation, config: Config, now: datetime):
        from dr.failover.readiness import Check, fresh

        m, error, backups, problems, done = observation
        if error is not None:
            return [Check(f"mysql:{m.name}", False, error)]
        checks = []
        if problems:
            checks.append(Check(f"mysql:{m.name}:manifests", False,
                                f"{len(problems)} backup manifest(s) do not authenticate and are "
                                f"ignored: {'; '.join(problems[:3])}"))
        checks.append(fresh(f"mysql:{m.name}:backup", backups[0].created.isoformat()
                            if backups else None, now, config, f"the newest backup in "
                            f"{m.destination} was taken"))
        if backups:
            checks.append(verified_check(m, backups, done, now))
        return checks


def verified_check(m: MysqlResource, backups: list, done, now):
    """PURE: whether the MySQL backups are proven restorable (restored into a scratch database and
    compared: `dr backup verify`, or `dr schedule` with mysql[].verify.every); `done` is the
    verification index (dr.backup.verified.load) or the error reading it.

    Fails when the newest backup failed its verification (a failover would restore it), when no
    backup was ever verified, and when verification is scheduled but none succeeded for two of
    its intervals (it stopped). The newest backup merely not verified *yet* passes, naming the
    newest verified one: backups are more frequent than verifications (each is a full restore),
    so failing on it would keep readiness red between two verifications."""
    from dr.backup import verified

    from dr.failover.readiness import Check

    name = f"mysql:{m.name}:verified"
    if isinstance(done, DrError):
        return Check(name, False, str(done))
    newest = backups[0]
    mine = done.get(newest.id)
    fix = (f"add mysql[].verify {{host, port, user, password, every: 1d}} (a scratch server) and "
           f"run `dr backup verify --name {m.name}`" if m.verify is None or m.verify_every is None
           else f"`dr backup verify --name {m.name}`")
    if mine and mine.get("status") == verified.FAILED:
        return Check(name, False, f"the newest backup {newest.id} FAILED its verification "
                                  f"({mine.get('at')}): {mine.get('error') or 'see the verify run'}; "
                                  f"a failover would restore it (details: dr runs show {mine.get('run_id')})")
    if mine:
        return Check(name, True, f"the newest backup {newest.id} was verified at {mine.get('at')} "
                                 f"(restored in {mine.get('restore_seconds')}s)")
    good = [(b, done[b.id]) for b in backups if done.get(b.id, {}).get("status") == verified.VERIFIED]
    if not good:
        return Check(name, False, f"no backup of {m.name} has been proven restorable: none was "
                                  f"restored and compared yet ({fix})")
    b, entry = good[0]
    at = parse_iso_or_none(entry.get("at"))
    age = now - at if at else None
    if m.verify_every is not None and age is not None and \
            age > 2 * m.verify_every.nominal_interval():
        return Check(name, False, f"verification has stopped: the newest verified backup, {b.id}, "
                                  f"was verified {format_duration(age)} ago, more than twice "
                                  f"verify.every ({m.verify_every}); the newest backup {newest.id} "
                                  "is not verified (check `dr schedule` and the verify server)")
    return Check(name, True, f"the newest backup {newest.id} is not verified yet; the newest "
                             f"verified one is {b.id}"
                             + (f" (verified {format_duration(age)} ago)" if age else ""))


def _verified_cell(check: dict | None):
    """`yes <time>`, `FAILED <time>`, or `no` (not verified yet)."""

    if not check:
        return "no"
    at = parse_iso_or_none(check.get("at"))
    verdict = "yes" if check.get("status") == "verified" else "FAILED"
    return (verdict, When(at)) if at else verdict


# --- verify -------------------------------------------------------------------------------------


@dataclass
class MysqlVerify:
    """One verification's outcome as `dr backup verify` reports it (dr.render.backup renders it)."""

    found: dict

    @property
    def ok(self) -> bool:
        return bool(self.found.get("ok"))

    def to_dict(self) -> dict:
        return self.found


def verify_mysql(ctx: Context, targets: list[tuple[MysqlResource, str | None]],
                 command: str | None = None) -> RunRecord:
    """Verify each (resource, backup id or None for the newest): restore into a scratch
    database on its verify server, compare, drop; one run of kind "verify" records it all
    (per resource: the backup verified, ok or the mismatches, the time the restore took and
    the time the whole verification took). Stale scratch databases are cleaned up first."""
    from dr.backup.cleanup import sweep
    from dr.backup.leases import RunLease
    from dr.state.recorder import Recorder
    from dr.state.records import new_run_id

    now = ctx.clock.now()
    run_id = new_run_id("verify", now)
    cleanup = sweep(ctx, [r for r, _ in targets], servers=("verify",), by=run_id)
    rec = Recorder(ctx.store, ctx.clock, "verify", command or ctx.command, run_id=run_id,
                   started=now, summary={"cleanup": [c.to_dict() for c in cleanup]}
                   if cleanup else None)
    with RunLease(ctx.store, run_id, "verify", ctx.clock) as lease, rec:
        for resource, backup in targets:
            _verify_one(ctx, resource, backup, rec.add(resource.name, "mysql"), lease, run_id)
    return rec.record


def _verify_one(ctx: Context, resource: MysqlResource, backup: str | None,
                recorded: ResourceRecorder, lease: RunLease, run_id: str) -> None:
    """Verify one backup into `result`, and record its verdict per backup (dr.backup.verified):
    `verified`, `failed` (it does not restore or does not match), or none when the attempt
    could not judge the backup (no verify server, the server or the destination unreachable)."""
    from dr.backup import mysql, verified

    from dr.crypto.errors import IntegrityError
    from dr.mysql.errors import RestoreError, StreamFormatError

    t0 = ctx.clock.monotonic()
    chosen = None
    verdict = None
    error = None
    try:
        backups = mysql.list_backups(mysql.destination(ctx, resource, None), resource)
        chosen = backups[0] if backup is None and backups else \
            next((b for b in backups if b.id == backup), None)
        if chosen is None:
            raise OperationFailed(
                f"no backup {backup} of {resource.name}" if backup else
                f"no complete backup of {resource.name} in {resource.destination}",
                hint=f"run `dr backup run --name {resource.name}` first")
        found = restore_and_compare(ctx, resource, chosen.id, lease=lease)
        verdict = verified.VERIFIED if found["ok"] else verified.FAILED
        if not found["ok"]:
            error = "; ".join(m for d in found["databases"].values() for m in d["mismatches"])
    except DrError as exc:
        found = {"ok": False, "error": str(exc)}
        error = str(exc)
        if chosen is not None and isinstance(exc, (IntegrityError, StreamFormatError, RestoreError)):
            verdict = verified.FAILED  # the backup itself did not decrypt, parse or restore
    except Exception as exc:  # a bug or an unexpected library error: record it, go on
        log.exception("%s: unexpected error while verifying", resource.name)
        found = {"ok": False, "error": f"unexpected error: {exc!r}"}
        error = found["error"]
    if chosen is not None:
        found.setdefault("backup_id", chosen.id)
        found.setdefault("created", iso(chosen.created))
    found["verify_seconds"] = round(ctx.clock.monotonic() - t0, 3)
    found["verdict"] = verdict
    recorded.result.summary = found
    if found["ok"]:
        recorded.complete()
    else:
        recorded.fail(error)
    if verdict is not None:
        try:
            verified.record(ctx.store, resource.name, chosen.id, {
                "status": verdict, "at": recorded.result.finished_at, "run_id": run_id,
                "created": iso(chosen.created), "restore_seconds": found.get("restore_seconds"),
                "verify_seconds": found["verify_seconds"],
                "error": None if verdict == verified.VERIFIED else error})
        except DrError as exc:
            log.error("%s: could not record the verification of %s: %s", resource.name,
                      chosen.id, exc)
            recorded.note(record_error=str(exc))


def newest_unverified(ctx: Context, resource: MysqlResource):
    """The newest backup of `resource` with no verification outcome yet (None: all done)."""
    from dr.backup import mysql, verified

    done = verified.load(ctx.store, resource.name)
    for b in mysql.list_backups(mysql.destination(ctx, resource, None), resource):
        return None if b.id in done else b
    return None


def restore_and_compare(ctx: Context, resource: MysqlResource, backup: str | None = None,
                        lease=None) -> dict:
    """Restore `backup` (default: the newest) into a scratch database on the verify server,
    compare, drop. `lease` is told the scratch database's name before it is created."""
    import secrets

    from dr.backup.mysql import connection_spec, open_backup
    from dr.mysql.conn import Timeouts, connect
    from dr.mysql.sqltext import quote_ident
    from dr.mysql.restore import restore as load

    if resource.verify is None:
        raise UsageError(f"mysql {resource.name} has no verify server",
                         hint="add mysql[].verify: {host, port, user, password: {env: NAME}} "
                              "(a scratch server: never production)")
    spec = connection_spec(resource.verify)
    chosen = open_backup(ctx, resource, backup)[0]
    results = {}
    for db in resource.databases:
        scratch = f"dr_verify_{secrets.token_hex(3)}"
        if lease is not None:
            lease.hold(databases=[scratch])
        _, stream = open_backup(ctx, resource, chosen.id)
        try:
            result = load(stream, spec, target_db=scratch, source_db=db, threads=resource.threads,
                          allow_mismatch=True, clock=ctx.clock)
            results[db] = {"ok": not result.mismatches, "mismatches": result.mismatches,
                           "checked": result.check_summary(),
                           "restore_seconds": round(result.seconds, 3), "rows": result.rows,
                           "tables": len(result.tables)}
        finally:
            conn = connect(spec, timeouts=Timeouts())
            try:
                with conn.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(scratch)}")
            finally:
                conn.close()
    return {"backup_id": chosen.id, "created": iso(chosen.created), "databases": results,
            "ok": all(r["ok"] for r in results.values()),
            "restore_seconds": round(sum(r["restore_seconds"] for r in results.values()), 3)}
