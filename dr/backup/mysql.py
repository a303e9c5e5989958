"""Self-managed MySQL: dump → zstd → encrypt (client-side) → stream to the destination; restore.

One backup per scheduled slot, named `<name>-<YYYYmmdd-HHMM>`: the data object
`<name>/<id>.dump.zst.drenc` and, written only after the data is complete, its manifest
`<name>/<id>.manifest.json` (what makes the backup exist: a backup without a manifest is
incomplete and is neither listed nor restored). The dump is never staged on disk or in memory.

The manifest sits unencrypted beside the data, so whoever can write to the destination can
edit it. It carries an HMAC under a key of its own that the backup's key provider wraps (KMS
or the key file, bound to the backup's id), and a restore picks "the newest" only among
manifests that authenticate (dr/mysql/FORMAT.md, "The backup manifest's authentication").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dr.backup.destination import Destination, DestinationWriteError
from dr.config import MysqlResource, MysqlServer
from dr.context import Context
from dr.errors import DrError, OperationFailed, UsageError
from dr.clock import iso, parse_iso

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
    return KmsKeyProvider(ctx.aws.kms(ctx.config.regions.dr), ctx.config.kms.dr_key)


def destination(ctx: Context, resource: MysqlResource, kms_key_arn: str | None) -> Destination:
    return Destination(resource.destination, ctx.aws, ctx.config.regions.dr, kms_key_arn)


@dataclass(frozen=True)
class Backup:
    """A complete backup, from its manifest."""

    resource: str
    id: str
    created: datetime  # when the consistent snapshot was taken (the recovery point)
    manifest: dict[str, Any]
    warnings: tuple[str, ...] = ()  # e.g. other backups whose manifest did not authenticate

    @property
    def data_name(self) -> str:
        return f"{self.resource}/{self.id}{DATA_SUFFIX}"

    @property
    def manifest_name(self) -> str:
        return f"{self.resource}/{self.id}{MANIFEST_SUFFIX}"


def list_backups(dest: Destination, resource: MysqlResource) -> list[Backup]:
    """Complete backups (those with a manifest), newest first, as their manifests say: NOT
    authenticated (no key needed; for listing). What a restore trusts comes from
    `authenticated_backups`."""
    found = []
    for name in dest.list(f"{resource.name}/"):
        if not name.endswith(MANIFEST_SUFFIX):
            continue
        try:
            doc = dest.get_json(name)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError("format")
            found.append(Backup(resource.name, str(doc["id"]), parse_iso(doc["created"]), doc))
        except (ValueError, KeyError, TypeError):
            log.warning("%s: not a dr MySQL backup manifest; ignored", dest.describe(name))
    return sorted(found, key=lambda b: b.created, reverse=True)


def run_backup(ctx: Context, resource: MysqlResource, kms_key_arn: str | None, now: datetime,
               lease=None) -> dict:
    """One backup for the current slot; returns the summary for the run record.

    Raises DrError on failure; nothing that looks complete is left behind: a failed data write
    leaves no file, and a manifest that cannot be written takes the data with it. `lease`
    (dr.backup.leases.RunLease) is told which files this run writes, so no cleanup elsewhere
    takes them for an interrupted run's leftovers."""
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
    if lease is not None:
        lease.hold(files=[dest.describe(data_name), dest.describe(manifest_name)])
    sink = None
    try:
        with dest.open_writer(data_name, expected_bytes=lambda: _newest_size(dest, resource)) \
                as sink:
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
    except Exception:
        # wrappers (zstd flushing into the aborted writer, the dump) may raise over the sink's
        # own error: the destination's error is the one that says what to fix
        failure = getattr(sink, "failure", None)
        if isinstance(failure, DestinationWriteError):
            raise failure from None
        raise
    doc = {
        "format": FORMAT, "id": bid, "name": resource.name, "created": iso(manifest.started_at),
        "data": data_name, "stored_bytes": stored, "compression": f"zstd-{ZSTD_LEVEL}",
        "encryption": {"kind": provider.kind, "key_id": provider.key_id,
                       "context": context_for(resource, bid)},
        "dump": manifest.to_dict(),
    }
    seal_manifest(doc, provider, resource.name)
    try:
        dest.put_json(manifest_name, doc)
    except BaseException as exc:
        removed = _remove_quietly(dest, data_name)
        if isinstance(exc, DrError):
            raise OperationFailed(
                f"the backup data {dest.describe(data_name)} ({stored:,} bytes) "
                f"was written, but its manifest could not be: {exc.message}; "
                + ("the data was removed too, so nothing that could pass for a backup is left"
                   if removed else "the data could not be removed: delete it by hand"),
                hint=exc.hint) from None
        raise
    return _summary(doc)


def _newest_size(dest: Destination, resource: MysqlResource) -> int | None:
    """The newest complete backup's size: about what the next one needs (for a full disk)."""
    try:
        newest = list_backups(dest, resource)[:1]
        return int(newest[0].manifest["stored_bytes"]) if newest else None
    except Exception:  # noqa: BLE001 - only an estimate for a message
        return None


def _remove_quietly(dest: Destination, name: str) -> bool:
    try:
        dest.delete(name)
        return True
    except Exception as exc:  # noqa: BLE001 - the caller reports the first error
        log.error("could not remove %s: %s", dest.describe(name), exc)
        return False


# -- the manifest's authentication ---------------------------------------------------------------

AUTH_ALG = "HMAC-SHA256"
AUTH_DOMAIN = b"dr-mysql-backup-manifest/1\x00"


def auth_context(resource_name: str, bid: str) -> dict[str, str]:
    """The encryption context of a manifest's MAC key: the backup it belongs to."""
    return {"dr:backup": f"{resource_name}/{bid}", "dr:kind": "mysql-manifest"}


def _canonical(doc: dict[str, Any]) -> bytes:
    """What the MAC covers: the manifest without `auth`, as sorted, compact, ASCII JSON."""
    return json.dumps({k: v for k, v in doc.items() if k != "auth"}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def seal_manifest(doc: dict[str, Any], provider, resource_name: str) -> dict[str, Any]:
    """Add `auth` to a manifest: HMAC-SHA256 under a fresh 256-bit key wrapped by `provider`
    with the manifest's own encryption context (so only the same KMS key or key file, for
    this backup id, can recover the key and check or forge the MAC)."""
    key, wrapped = provider.new_data_key(auth_context(resource_name, doc["id"]))
    doc["auth"] = {"alg": AUTH_ALG, "key_kind": provider.kind, "key_id": provider.key_id,
                   "wrapped_key": base64.b64encode(wrapped).decode("ascii"),
                   "mac": hmac.new(key, AUTH_DOMAIN + _canonical(doc), hashlib.sha256)
                   .hexdigest()}
    return doc


def authenticate_manifest(dest: Destination, resource: MysqlResource, name: str,
                          doc: Any, provider) -> Backup:
    """The backup a manifest read from `name` describes, once its contents are proven: by its
    MAC, or for a manifest written before manifests had one, by the header frame inside the
    (authenticated) encrypted dump, whose start time must be the manifest's `created`.
    Raises IntegrityError saying what does not hold."""
    from dr.crypto import IntegrityError

    where = dest.describe(name)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise IntegrityError(f"{where} is not a dr MySQL backup manifest")
    bid = doc.get("id")
    if not isinstance(bid, str) or name != f"{resource.name}/{bid}{MANIFEST_SUFFIX}":
        raise IntegrityError(f"{where} describes backup {bid!r} of {doc.get('name')!r}, not the "
                             "backup its name says", hint="a manifest was copied or renamed")
    if doc.get("name") != resource.name or \
            doc.get("data") != f"{resource.name}/{bid}{DATA_SUFFIX}":
        raise IntegrityError(f"{where}: its name or data fields do not belong to backup {bid}")
    try:
        created = parse_iso(doc["created"])
    except (KeyError, TypeError, ValueError):
        raise IntegrityError(f"{where}: 'created' is not a time") from None
    auth = doc.get("auth")
    if auth is not None:
        _check_mac(where, doc, auth, provider, resource.name, bid)
    else:
        _check_stream_start(dest, resource, bid, created, provider, where)
    return Backup(resource.name, bid, created, doc)


def _check_mac(where: str, doc: dict, auth: Any, provider, resource_name: str,
               bid: str) -> None:
    from dr.crypto import IntegrityError
    from dr.crypto.keys import key_mismatch

    try:
        alg, kind, key_id, mac = auth["alg"], auth["key_kind"], auth["key_id"], auth["mac"]
        wrapped = base64.b64decode(auth["wrapped_key"], validate=True)
        bytes.fromhex(mac)
    except (KeyError, TypeError, ValueError):
        raise IntegrityError(f"{where}: its authentication block is malformed") from None
    if alg != AUTH_ALG:
        raise IntegrityError(f"{where}: unknown manifest authentication {alg!r}")
    if kind != provider.kind or key_id != provider.key_id:
        raise key_mismatch(kind, key_id, provider)
    key = provider.unwrap(wrapped, key_id, auth_context(resource_name, bid))
    try:
        canonical = _canonical(doc)
    except ValueError:  # NaN and the like: nothing dr writes
        raise IntegrityError(f"{where}: its contents are not canonical JSON") from None
    expected = hmac.new(key, AUTH_DOMAIN + canonical, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, mac.lower()):
        raise IntegrityError(f"{where} fails authentication: it was changed after the backup "
                             "wrote it (its MAC does not match its contents)",
                             hint="restore a backup by id (--backup) after checking the "
                                  "destination; the data itself is authenticated separately")


def _check_stream_start(dest: Destination, resource: MysqlResource, bid: str,
                        created: datetime, provider, where: str) -> None:
    """A manifest without a MAC (dr before manifests had one): `created` must be the start
    time in the dump's own header frame, which the encryption authenticates (and binds to
    this backup id through the encryption context)."""
    import zstandard

    from dr.crypto import IntegrityError, decrypt_from
    from dr.mysql.errors import StreamFormatError
    from dr.mysql.frames import HEAD, FrameReader, read_head

    encrypted = dest.open_reader(f"{resource.name}/{bid}{DATA_SUFFIX}")
    try:
        plain = decrypt_from(encrypted, provider, expected_context=context_for(resource, bid))
        stream = zstandard.ZstdDecompressor().stream_reader(plain, read_size=1 << 16)
        try:
            reader = FrameReader(stream)
            kind, payload = next(reader)
            if kind != HEAD:
                raise StreamFormatError("the dump stream does not start with its header frame")
            started = parse_iso(read_head(payload, reader.offset).get("started_at", ""))
        except (StreamFormatError, zstandard.ZstdError, ValueError, StopIteration) as e:
            raise IntegrityError(f"{where}: cannot read the start of its dump to check it: "
                                 f"{e}") from None
    finally:
        try:
            encrypted.close()
        except Exception:  # noqa: BLE001 - a reader that cannot close has nothing to lose
            pass
    if started != created:
        raise IntegrityError(f"{where} says the backup was taken at {iso(created)}, but its "
                             f"dump started at {iso(started)}: the manifest was changed",
                             hint="restore a backup by id (--backup) after checking the "
                                  "destination")


def authenticated_backups(dest: Destination, resource: MysqlResource,
                          provider) -> tuple[list[Backup], list[str]]:
    """(backups whose manifest authenticates, newest first by their authenticated time;
    what is wrong with each of the others). A manifest that fails is never trusted: not its
    time, not its name."""
    from dr.crypto import IntegrityError

    found: dict[str, Backup] = {}
    problems = []
    for name in dest.list(f"{resource.name}/"):
        if not name.endswith(MANIFEST_SUFFIX):
            continue
        try:
            doc = dest.get_json(name)
        except ValueError:
            doc = None
        try:
            backup = authenticate_manifest(dest, resource, name, doc, provider)
        except (IntegrityError, OperationFailed) as e:
            problems.append(e.message)
            continue
        found[backup.id] = backup
    return sorted(found.values(), key=lambda b: b.created, reverse=True), problems


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
    provider = key_provider(ctx, resource)
    if backup is None:  # the newest, among manifests that prove what they say
        backups, problems = authenticated_backups(dest, resource, provider)
        for problem in problems:
            log.warning("%s: ignored a backup whose manifest does not authenticate: %s",
                        resource.name, problem)
        if not backups:
            if problems:
                raise OperationFailed(
                    f"no backup of {resource.name} in {resource.destination} has a manifest "
                    f"that authenticates: {'; '.join(problems[:3])}",
                    hint="check the destination and the key; name a backup with --backup")
            raise OperationFailed(f"no complete backup of {resource.name} in "
                                  f"{resource.destination}",
                                  hint=f"run `dr backup run --name {resource.name}` first")
        chosen = backups[0]
        if problems:
            chosen = Backup(chosen.resource, chosen.id, chosen.created, chosen.manifest,
                            tuple(f"ignored a backup whose manifest does not authenticate: {p}"
                                  for p in problems))
    else:
        name = f"{resource.name}/{backup}{MANIFEST_SUFFIX}"
        if name not in dest.list(f"{resource.name}/"):
            known = ", ".join(b.id for b in list_backups(dest, resource)[:5]) or "none"
            raise UsageError(f"no backup {backup!r} of {resource.name} (newest: {known})")
        try:
            doc = dest.get_json(name)
        except ValueError:
            doc = None
        chosen = authenticate_manifest(dest, resource, name, doc, provider)
    encrypted = dest.open_reader(chosen.data_name)
    plain = decrypt_from(encrypted, provider, expected_context=context_for(resource, chosen.id))
    return chosen, zstandard.ZstdDecompressor().stream_reader(plain, read_size=1 << 20)


def _targets(resource: MysqlResource, target_db: str | None, database: str | None) -> list[str]:
    """The databases a restore writes: the one named in the URI, else each under its own name."""
    if target_db:
        return [target_db]
    return [database] if database else list(resource.databases)


def restore(ctx: Context, resource: MysqlResource, *, to_uri: str, backup: str | None = None,
            database: str | None = None, force: bool = False, password: str | None = None,
            allow_mismatch: tuple[str, ...] = (), keep_definers: bool = False):
    """Restore a backup into the database named by `to_uri`; returns (Backup, RestoreResult).

    `allow_mismatch` names tables whose rows, content or sequence state may differ from the
    backup (the swap then still happens, and the run record says so); `keep_definers` creates
    views, routines, triggers and events with their original definers instead of the
    restoring account.

    A restore into the same target that a crash interrupted during its swap is settled first
    (finished once every new table was in place, else rolled back: dr.mysql.swap). When that
    finished a swap of this very backup (and database), the restore is complete: it is
    reported as such instead of being done a second time."""
    from dr.mysql.conn import parse_uri
    from dr.mysql.restore import restore as load
    from dr.mysql.restore import resume, resumed_result

    spec, target_db = parse_uri(to_uri, password=password)
    source_db = database
    if source_db is None and len(resource.databases) > 1 and target_db:
        raise UsageError(f"{resource.name} backs up {', '.join(resource.databases)}: say which one "
                         "with --database")
    with _restore_recorder(ctx, resource, f"{spec.describe()}/{target_db or ''}") as rec, \
            rec.resource(resource.name, "mysql") as recorded:
        chosen, stream = open_backup(ctx, resource, backup)
        label = {"backup": f"{resource.name}/{chosen.id}", "database": source_db}
        settled = [r for t in _targets(resource, target_db, source_db)
                   if (r := resume(spec, t)) is not None]
        done = resumed_result(settled[0]) if len(settled) == 1 and settled[0].note.get(
            "label") == label else None
        if done is not None and set(done.databases.values()) == set(
                _targets(resource, target_db, source_db)):
            stream.close()
            loaded = done  # the interrupted restore of this backup was finished from its journal
        else:
            loaded = load(stream, spec, target_db=target_db, source_db=source_db, force=force,
                          threads=resource.threads, clock=ctx.clock, label=label,
                          allow_mismatch=tuple(allow_mismatch), keep_definers=keep_definers)
            loaded.warnings[:0] = [r.describe() for r in settled]
        result = recorded.result
        result.summary = {"backup_id": chosen.id, "created": iso(chosen.created),
                          "databases": loaded.databases, "rows": loaded.rows,
                          "restore_seconds": round(loaded.seconds, 3),
                          "checked": loaded.check_summary(), "resumed": loaded.resumed,
                          "keep_definers": keep_definers}
        if loaded.allowed_mismatches:
            result.summary["allowed_mismatches"] = list(loaded.allowed_mismatches)
            log.warning("%s: restored although %d table check(s) failed (allowed with "
                        "--allow-mismatch): %s", resource.name, len(loaded.allowed_mismatches),
                        "; ".join(loaded.allowed_mismatches))
        loaded.warnings[:0] = list(chosen.warnings)
        if loaded.warnings:
            result.summary["warnings"] = list(loaded.warnings)
    return chosen, loaded


def resume(ctx: Context, resource: MysqlResource, *, to_uri: str, database: str | None = None,
           password: str | None = None) -> list:
    """`dr restore mysql --resume`: settle the restores into `to_uri`'s database (or each backed
    up database, under its own name) that a crash interrupted during their swap: finish each
    one whose new tables were all in place, roll back the others. Returns the Recoveries (none:
    nothing was unfinished). Reads no backup."""
    from dr.mysql.conn import parse_uri
    from dr.mysql.restore import resume as settle

    spec, target_db = parse_uri(to_uri, password=password)
    with _restore_recorder(ctx, resource, f"{spec.describe()}/{target_db or ''}") as rec, \
            rec.resource(resource.name, "mysql") as recorded:
        settled = [r for t in _targets(resource, target_db, database)
                   if (r := settle(spec, t)) is not None]
        recorded.note(resumed=[{"target": r.target, "outcome": r.outcome, "phase": r.phase,
                                "backup": r.note.get("label")} for r in settled])
        unfinished = "; ".join(r.describe() for r in settled if r.outcome != "finished")
        if unfinished:
            recorded.fail(unfinished)
            rec.finish(error=unfinished)
    return settled


def _restore_recorder(ctx: Context, resource: MysqlResource, target: str):
    """The recorder of a restore run: where to (user@host:port/db, never a password), what,
    how long (dr.state.recorder saves each change; Ctrl-C leaves it interrupted)."""
    from dr.state.recorder import Recorder

    return Recorder(ctx.store, ctx.clock, "restore", ctx.command.split(" --to ")[0],
                    plan=[{"name": resource.name, "to": target}])
