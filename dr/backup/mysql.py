"""Self-managed MySQL: dump → zstd → encrypt (client-side) → stream to the destination; restore.

One backup per scheduled slot, named `<name>-<YYYYmmdd-HHMM>`: the data object
`<name>/<id>.dump.zst.drenc` and, written only after the data is complete, its manifest
`<name>/<id>.manifest.json` (what makes the backup exist: a backup without a manifest is
incomplete and is neither listed nor restored). The dump is never staged on disk or in memory.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dr.backup.destination import Destination
from dr.config import MysqlResource, MysqlServer
from dr.context import Context
from dr.errors import OperationFailed, UsageError
from dr.state.runs import iso, parse_iso

log = logging.getLogger(__name__)
ZSTD_LEVEL = 3  # ~ the speed of level 1 with the 2 zstd threads, noticeably smaller
DATA_SUFFIX, MANIFEST_SUFFIX = ".dump.zst.drenc", ".manifest.json"
FORMAT = "dr-mysql-backup/1"


def backup_id(name: str, slot: datetime) -> str:
    return f"{name}-{slot:%Y%m%d-%H%M}"


def context_for(resource: MysqlResource, bid: str) -> dict[str, str]:
    """The encryption context: binds each file to its backup (KMS checks it, and so do we)."""
    return {"dr:backup": f"{resource.name}/{bid}", "dr:kind": "mysql"}


def connection_spec(server: MysqlServer):
    from dr.mysql.conn import ConnectionSpec

    return ConnectionSpec(
        host=server.host, port=server.port, user=server.user,
        password=server.password.resolve() if server.password else None,
        unix_socket=server.socket, tls=server.tls, ca_file=server.ca_file,
        connect_timeout=server.connect_timeout.total_seconds())


def key_provider(ctx: Context, resource: MysqlResource):
    from dr.crypto import KmsKeyProvider, LocalKeyProvider

    if resource.key_file:
        return LocalKeyProvider(resource.key_file)
    return KmsKeyProvider(ctx.aws.client("kms", ctx.config.regions.dr), ctx.config.kms.dr_key)


def destination(ctx: Context, resource: MysqlResource, kms_key_arn: str | None) -> Destination:
    return Destination(resource.destination, ctx.aws, ctx.config.regions.dr, kms_key_arn)


@dataclass(frozen=True)
class Backup:
    """A complete backup, from its manifest."""

    resource: str
    id: str
    created: datetime  # when the consistent snapshot was taken (the recovery point)
    manifest: dict[str, Any]

    @property
    def data_name(self) -> str:
        return f"{self.resource}/{self.id}{DATA_SUFFIX}"


def list_backups(dest: Destination, resource: MysqlResource) -> list[Backup]:
    """Complete backups (those with a manifest), newest first."""
    found = []
    for name in dest.list(f"{resource.name}/"):
        if not name.endswith(MANIFEST_SUFFIX):
            continue
        doc = dest.get_json(name)
        if not doc or doc.get("format") != FORMAT:
            log.warning("%s: not a dr MySQL backup manifest; ignored", dest.describe(name))
            continue
        found.append(Backup(resource.name, doc["id"], parse_iso(doc["created"]), doc))
    return sorted(found, key=lambda b: b.created, reverse=True)


def run_backup(ctx: Context, resource: MysqlResource, kms_key_arn: str | None, now: datetime) -> dict:
    """One backup for the current slot; returns the summary for the run record.

    Raises DrError on failure; nothing that looks complete is left behind."""
    import zstandard

    from dr.crypto import encrypt_to
    from dr.mysql.dump import dump

    dest = destination(ctx, resource, kms_key_arn)
    dest.check()
    bid = backup_id(resource.name, resource.schedule.slot_start(now))
    manifest_name = f"{resource.name}/{bid}{MANIFEST_SUFFIX}"
    existing = dest.get_json(manifest_name)
    if existing:
        log.info("%s: backup %s already exists for this slot; nothing to do", resource.name, bid)
        return {**_summary(existing), "already_done": True}
    provider = key_provider(ctx, resource)
    data_name = f"{resource.name}/{bid}{DATA_SUFFIX}"
    with dest.open_writer(data_name) as sink:
        writer = encrypt_to(sink, provider, context_for(resource, bid))
        try:
            compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=2)
            with compressor.stream_writer(writer, closefd=False) as zwriter:
                manifest = dump(connection_spec(resource.server), resource.databases, zwriter,
                                threads=resource.threads, clock=ctx.clock,
                                lock_timeout=resource.lock_timeout.total_seconds())
            writer.close()
        except BaseException:
            writer.abort()
            raise
        stored = sink.bytes_written
    doc = {
        "format": FORMAT, "id": bid, "name": resource.name, "created": iso(manifest.started_at),
        "data": data_name, "stored_bytes": stored, "compression": f"zstd-{ZSTD_LEVEL}",
        "encryption": {"kind": provider.kind, "key_id": provider.key_id,
                       "context": context_for(resource, bid)},
        "dump": manifest.to_dict(),
    }
    dest.put_json(manifest_name, doc)
    return _summary(doc)


def _summary(doc: dict) -> dict:
    dumped = doc.get("dump", {})
    return {"backup_id": doc["id"], "created": doc["created"], "data": doc["data"],
            "stored_bytes": doc.get("stored_bytes"), "rows": dumped.get("rows"),
            "data_bytes": dumped.get("data_bytes"), "dump_seconds": dumped.get("seconds"),
            "binlog": dumped.get("binlog"), "key_id": doc.get("encryption", {}).get("key_id")}


def open_backup(ctx: Context, resource: MysqlResource, backup: str | None):
    """(Backup, readable decrypted+decompressed stream) for `backup` or the newest."""
    import zstandard

    from dr.crypto import decrypt_from

    dest = destination(ctx, resource, None)
    backups = list_backups(dest, resource)
    if not backups:
        raise OperationFailed(f"no complete backup of {resource.name} in {resource.destination}",
                              hint=f"run `dr backup run --name {resource.name}` first")
    chosen = backups[0] if backup is None else next((b for b in backups if b.id == backup), None)
    if chosen is None:
        known = ", ".join(b.id for b in backups[:5])
        raise UsageError(f"no backup {backup!r} of {resource.name} (newest: {known})")
    provider = key_provider(ctx, resource)
    encrypted = dest.open_reader(chosen.data_name)
    plain = decrypt_from(encrypted, provider, expected_context=context_for(resource, chosen.id))
    return chosen, zstandard.ZstdDecompressor().stream_reader(plain, read_size=1 << 20)


def restore(ctx: Context, resource: MysqlResource, *, to_uri: str, backup: str | None = None,
            database: str | None = None, force: bool = False, password: str | None = None):
    """Restore a backup into the database named by `to_uri`; returns (Backup, RestoreResult)."""
    from dr.mysql.conn import parse_uri
    from dr.mysql.restore import restore as load

    spec, target_db = parse_uri(to_uri, password=password)
    source_db = database
    if source_db is None and len(resource.databases) > 1 and target_db:
        raise UsageError(f"{resource.name} backs up {', '.join(resource.databases)}: say which one "
                         "with --database")
    record, result = _restore_record(ctx, resource, f"{spec.describe()}/{target_db or ''}")
    try:
        chosen, stream = open_backup(ctx, resource, backup)
        loaded = load(stream, spec, target_db=target_db, source_db=source_db, force=force,
                      threads=resource.threads, clock=ctx.clock)
    except BaseException as exc:
        record.status = result.status = "interrupted" if isinstance(exc, KeyboardInterrupt) \
            else "failed"
        result.error = record.error = str(exc) or type(exc).__name__
        raise
    else:
        record.status = result.status = "completed"
        result.summary = {"backup_id": chosen.id, "created": iso(chosen.created),
                          "databases": loaded.databases, "rows": loaded.rows,
                          "restore_seconds": round(loaded.seconds, 3)}
        return chosen, loaded
    finally:
        record.finished_at = result.finished_at = iso(ctx.clock.now())
        ctx.runs.save(record)


def _restore_record(ctx: Context, resource: MysqlResource, target: str):
    """A run record for a restore: where to (user@host:port/db, never a password), what, how long."""
    import dr
    from dr.state.runs import ResourceResult, RunRecord, new_run_id

    now = ctx.clock.now()
    record = RunRecord(run_id=new_run_id("restore", now), kind="restore", status="running",
                       started_at=iso(now), command=ctx.command.split(" --to ")[0],
                       dr_version=dr.__version__, plan=[{"name": resource.name, "to": target}])
    result = ResourceResult(name=resource.name, kind="mysql", status="running", started_at=iso(now))
    record.results.append(result)
    ctx.runs.save(record)
    return record, result


def verify(ctx: Context, resource: MysqlResource) -> dict:
    """Restore the newest backup into a scratch database on the verify server, compare, drop."""
    from dr.mysql.conn import connect
    from dr.mysql.sqltext import quote_ident
    from dr.mysql.restore import restore as load

    if resource.verify is None:
        raise UsageError(f"mysql {resource.name} has no verify server",
                         hint="add mysql[].verify: {host, port, user, password: {env: NAME}} "
                              "(a scratch server: never production)")
    spec = connection_spec(resource.verify)
    chosen = open_backup(ctx, resource, None)[0]
    results = {}
    for db in resource.databases:
        scratch = f"dr_verify_{secrets.token_hex(3)}"
        _, stream = open_backup(ctx, resource, chosen.id)
        try:
            result = load(stream, spec, target_db=scratch, source_db=db, threads=resource.threads,
                          allow_mismatch=True, clock=ctx.clock)
            results[db] = {"ok": not result.mismatches, "mismatches": result.mismatches,
                           "restore_seconds": round(result.seconds, 3), "rows": result.rows,
                           "tables": len(result.tables)}
        finally:
            conn = connect(spec)
            try:
                with conn.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(scratch)}")
            finally:
                conn.close()
    return {"backup_id": chosen.id, "created": iso(chosen.created), "databases": results,
            "ok": all(r["ok"] for r in results.values()),
            "restore_seconds": round(sum(r["restore_seconds"] for r in results.values()), 3)}
