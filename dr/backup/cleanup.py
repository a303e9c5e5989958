"""What runs that never finished left behind, found, proven stale, removed and reported.

A run killed mid-way (kill -9, the OOM killer, a reboot) leaves:

* `<name>.partial-<hex>` files in a file:// destination, and unfinished multipart uploads in an
  s3:// one (S3 bills their parts until they are aborted);
* backup data without its manifest (killed between the two, or a prune killed between deleting
  the manifest and the data): never listed, never restored, only paid for;
* `dr_verify_<hex>` scratch databases and `<db>__dr_staging_<hex>` staging databases;
* its run record, stuck at `running`.

`sweep()` runs at the start of every `dr backup run` (leftovers of the resources it backs up, on
their destinations and source servers), of `dr backup verify` (the verify servers) and in
`dr backup prune` (everything, plus old records without a lease). What it removes it must prove
stale, never by age alone:

* backup files and scratch databases are held by the run lease of the run writing them
  (dr.backup.leases): one not held by a live lease is stale; a live lease protects whatever it
  holds. Files and databases are listed before the leases are read, and a run takes its lease
  before it creates anything, so a live run's files are always seen as held;
* a restore's staging database (made by `dr restore mysql`, which holds no lease) is stale when
  no session on the server uses it and none of its tables changed for STAGING_STALE_AFTER (6 h),
  measured on the server's clock. Without the PROCESS privilege dr cannot see other sessions, so
  it leaves those databases alone and says so;
* a run record stuck at `running` is marked `interrupted`, saying why, when its lease is dead or
  stale; a record with no lease at all (written by an older dr, or a restore) only by `dr backup
  prune`, once it has been running for NO_LEASE_STALE_AFTER (24 h) (each record is looked at
  once: prune remembers how far it got, and looks back at most RECORD_SCAN, 7 days).

`<db>__dr_old_<hex>` databases (a restore's swap killed before it dropped the target's previous
tables) hold the only copy of that data: they are reported, never dropped (`dr restore mysql
--resume` settles such a swap from its journal, `<db>__dr_swap_<hex>`, which is never touched
here either).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from dr.backup.leases import lease_state, read_leases
from dr.config import MysqlResource, MysqlServer
from dr.context import Context
from dr.errors import DrError
from dr.clock import iso, parse_iso_or_none
from dr.state.records import RunRecord

log = logging.getLogger(__name__)
STAGING_STALE_AFTER = timedelta(hours=6)
NO_LEASE_STALE_AFTER = timedelta(hours=24)
RECORD_SCAN = timedelta(days=7)  # how far back prune looks for records stuck without a lease
RECORD_KINDS = ("backup", "verify", "prune", "restore")  # drills and failovers have their own lease
SCAN_MARK = "cleanup/records-scanned.json"  # how far prune's scan of unleased records got
SCRATCH = re.compile(r"dr_verify_[0-9a-f]{6}")
STAGING = re.compile(r"(?P<target>.{1,40})__dr_staging_[0-9a-f]{8}")
# the swap journal of a verify's scratch database (a verify killed mid-swap); a real target's
# journal is never touched: it may be all that can settle that target
SCRATCH_SWAP = re.compile(r"(?P<target>dr_verify_[0-9a-f]{6})__dr_swap_[0-9a-f]{8}")
OLD = re.compile(r".{1,40}__dr_old_[0-9a-f]+")


@dataclass
class Cleanup:
    """One leftover: what, where, why it is stale (or kept), and what was done."""

    what: str  # partial file | unfinished upload | data without manifest | scratch database | ...
    where: str
    why: str
    status: str  # removed | would remove | kept | failed
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        return (f"{self.status} {self.what} {self.where}: {self.why}"
                + (f" ({self.error})" if self.error else ""))


def sweep(ctx: Context, mysql: Iterable[MysqlResource] = (), *, servers: tuple[str, ...] = ("server",),
          dry_run: bool = False, scan_records: bool = False, by: str = "") -> list[Cleanup]:
    """Find and remove the leftovers of `mysql` resources (files on their destinations, databases
    on their `servers`: "server", "verify") and mark stale run records; never raises."""
    out: list[Cleanup] = []
    try:
        _sweep(ctx, list(mysql), servers, dry_run, scan_records, by or "dr", out)
    except Exception as exc:  # noqa: BLE001 - a cleanup must never stop the run that does it
        log.warning("cleanup of interrupted runs stopped: %s", exc)
        out.append(Cleanup("leftovers", ctx.store.description, "the cleanup could not finish",
                           "failed", str(exc).splitlines()[0]))
    for c in out:
        (log.warning if c.status == "failed" else log.info)("cleanup: %s", c.line())
    return out


def _sweep(ctx: Context, mysql: list[MysqlResource], servers: tuple[str, ...], dry_run: bool,
           scan_records: bool, by: str, out: list[Cleanup]) -> None:
    from dr.backup import mysql as my

    now = ctx.clock.now()
    # 1. what exists, before the leases are read (a run takes its lease before it writes)
    files = []  # (destination, kind, Unfinished | name)
    for r in mysql:
        try:
            dest = my.destination(ctx, r, None)
            for u in dest.unfinished(f"{r.name}/"):
                files.append((dest, "partial file" if dest.scheme == "file" else
                              "unfinished upload", u))
            names = set(dest.list(f"{r.name}/"))
            for n in sorted(names):
                if n.endswith(my.DATA_SUFFIX) and \
                        n[:-len(my.DATA_SUFFIX)] + my.MANIFEST_SUFFIX not in names:
                    files.append((dest, "data without manifest", n))
        except DrError as exc:
            out.append(Cleanup("backup files", r.destination, "could not look for leftovers",
                               "failed", exc.message))
    databases = []  # (server, spec, name, sessions, idle seconds, sees all sessions)
    seen_servers = set()
    for r in mysql:
        for attr in servers:
            server: MysqlServer | None = getattr(r, attr)
            if server is None:
                continue
            spec = my.connection_spec(server)
            if spec.address in seen_servers:
                continue
            seen_servers.add(spec.address)
            try:
                databases += _databases(spec)
            except Exception as exc:  # noqa: BLE001 - pymysql and DrError alike
                out.append(Cleanup("staging databases", spec.address, "could not look for "
                                   "leftovers", "failed", getattr(exc, "message", None) or str(exc)))
    # 2. the leases
    live_files: set[str] = set()
    live_dbs: set[str] = set()
    stale: list[tuple[str, dict, str]] = []
    held_by_stale: dict[str, str] = {}
    for key, doc in read_leases(ctx.store):
        state, why = lease_state(doc, now)
        if state == "live":
            live_files.update(doc.get("files") or [])
            live_dbs.update(doc.get("databases") or [])
            continue
        stale.append((key, doc, why))
        for held in [*(doc.get("files") or []), *(doc.get("databases") or [])]:
            held_by_stale[held] = f"run {doc.get('run_id')} wrote it and {why}"
    # 3. backup files
    for dest, kind, item in files:
        name = item if isinstance(item, str) else item.name
        full = dest.describe(name)
        where = full if isinstance(item, str) else item.where
        if full in live_files:
            continue  # a live run is writing it: not a leftover
        why = held_by_stale.get(full, "no running dr holds it (no live run lease names it)")
        out.append(_act(kind, where, why, dry_run,
                        (lambda d=dest, n=name: d.delete(n)) if isinstance(item, str)
                        else (lambda d=dest, u=item: d.discard(u))))
    # 4. databases
    for spec, name, sessions, idle, sees_all in databases:
        out.extend(_database(spec, name, sessions, idle, sees_all, live_dbs, held_by_stale, dry_run))
    # 5. records of stale leases, then the leases themselves
    for key, doc, why in stale:
        run_id = doc.get("run_id")
        if isinstance(run_id, str):
            marked = _mark(ctx, run_id, why, parse_iso_or_none(doc.get("heartbeat")), now, by,
                           dry_run)
            if marked is not None:
                out.append(marked)
        if not dry_run:
            try:
                ctx.store.delete(key)
            except Exception as exc:  # noqa: BLE001
                log.warning("could not delete the stale lease %s: %s", key, exc)
    if scan_records:
        leased = {doc.get("run_id") for _, doc in read_leases(ctx.store)}
        out.extend(_unleased_records(ctx, now, leased, by, dry_run))


def _act(what: str, where: str, why: str, dry_run: bool, remove) -> Cleanup:
    if dry_run:
        return Cleanup(what, where, why, "would remove")
    try:
        remove()
        return Cleanup(what, where, why, "removed")
    except Exception as exc:  # noqa: BLE001 - reported; the next cleanup tries again
        return Cleanup(what, where, why, "failed", getattr(exc, "message", None) or str(exc))


# --- databases ------------------------------------------------------------------------------------


def _databases(spec) -> list[tuple]:
    """(spec, name, sessions using it, seconds since its tables last changed or None, whether
    this account sees every session) for each scratch/staging/old database on the server."""
    from dr.mysql.conn import connect

    conn = connect(spec)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME "
                        "LIKE %s OR SCHEMA_NAME LIKE %s OR SCHEMA_NAME LIKE %s",
                        ("dr\\_verify\\_%", "%\\_\\_dr\\_staging\\_%", "%\\_\\_dr\\_old\\_%"))
            names = sorted(r[0] for r in cur.fetchall()
                           if SCRATCH.fullmatch(r[0]) or STAGING.fullmatch(r[0])
                           or SCRATCH_SWAP.fullmatch(r[0]) or OLD.fullmatch(r[0]))
            if not names:
                return []
            cur.execute("SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES "
                        "WHERE PRIVILEGE_TYPE IN ('PROCESS', 'SUPER')")
            sees_all = bool(cur.fetchone()[0])
            found = []
            for name in names:
                cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                            "WHERE DB = %s AND ID <> CONNECTION_ID()", (name,))
                sessions = int(cur.fetchone()[0])
                cur.execute("SELECT TIMESTAMPDIFF(SECOND, GREATEST(COALESCE(MAX(CREATE_TIME), "
                            "'1970-01-02'), COALESCE(MAX(UPDATE_TIME), '1970-01-02')), NOW()), "
                            "COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
                            (name,))
                idle, tables = cur.fetchone()
                found.append((spec, name, sessions, int(idle) if tables else None, sees_all))
            return found
    finally:
        conn.close()


def _database(spec, name: str, sessions: int, idle: int | None, sees_all: bool,
              live_dbs: set[str], held_by_stale: dict[str, str], dry_run: bool) -> list[Cleanup]:
    where = f"{name} on {spec.address}"
    journal = SCRATCH_SWAP.fullmatch(name)
    staging = STAGING.fullmatch(name) or journal
    owner = staging["target"] if staging else name  # a verify's staging belongs to its scratch db
    if OLD.fullmatch(name):
        return [Cleanup("previous tables of a restored database", where,
                        "a restore's swap stopped before dropping the target's previous tables; "
                        "they may be the only copy: if a `__dr_swap_` journal database of that "
                        "target exists, `dr restore mysql --resume` settles the swap; else check, "
                        "then DROP DATABASE it yourself", "kept")]
    if sessions:
        return [] if owner in live_dbs or name in live_dbs else [Cleanup(
            "staging database" if staging else "scratch database", where,
            f"{sessions} session(s) use it", "kept")]
    if name in live_dbs or owner in live_dbs:
        return []  # a live verify holds it
    if SCRATCH.fullmatch(owner):
        why = held_by_stale.get(owner) or held_by_stale.get(name) or \
            "no running dr holds it (no live run lease names it) and no session uses it"
        what = "swap journal of a scratch database" if journal else \
            "scratch database" if not staging else "staging database"
    else:  # a restore's staging database: no lease to ask
        if not sees_all:
            return [Cleanup("staging database", where, "this account lacks the PROCESS privilege, "
                            "so dr cannot prove no restore is using it", "kept")]
        if idle is not None and idle < STAGING_STALE_AFTER.total_seconds():
            return []  # maybe a restore between sessions: look again later
        why = ("no session uses it and its tables have not changed for "
               f"{idle // 3600}h{idle % 3600 // 60:02d}m" if idle is not None else
               "no session uses it and it holds no table")
        what = "staging database"
    return [_act(what, where, why, dry_run, lambda: _drop(spec, name))]


def _drop(spec, name: str) -> None:
    from dr.mysql.conn import connect
    from dr.mysql.sqltext import quote_ident

    conn = connect(spec)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")
    finally:
        conn.close()


# --- run records ----------------------------------------------------------------------------------


def _mark(ctx: Context, run_id: str, why: str, last_beat: datetime | None, now: datetime,
          by: str, dry_run: bool) -> Cleanup | None:
    try:
        record = ctx.runs.load(run_id)
    except DrError:
        return None  # died before its first record: nothing to mark
    if record.status != "running":
        return None
    what = f"{run_id} ({record.kind})"
    reason = f"stuck at running: {why}"
    if dry_run:
        return Cleanup("run record", what, reason, "would mark interrupted")
    mark_interrupted(record, f"the run stopped without finishing: {why}", last_beat or now, now, by)
    try:
        ctx.runs.save(record)
    except Exception as exc:  # noqa: BLE001
        return Cleanup("run record", what, reason, "failed", str(exc))
    return Cleanup("run record", what, reason, "marked interrupted")


def mark_interrupted(record: RunRecord, error: str, ended: datetime, now: datetime, by: str) -> None:
    """A record whose process died: `interrupted`, with why, and when it was last known alive."""
    end = iso(ended)
    record.status = "interrupted"
    record.error = error
    record.finished_at = record.finished_at or end
    record.summary = {**(record.summary or {}),
                      "abandoned": {"found_by": by, "found_at": iso(now), "last_alive": end,
                                    "why": error}}
    for result in record.results:
        if result.status == "running":
            result.status, result.error = "interrupted", result.error or error
            result.finished_at = result.finished_at or end
        for step in result.steps:
            if step.status == "running":
                step.status, step.finished_at = "interrupted", step.finished_at or end


def _unleased_records(ctx: Context, now: datetime, leased: set, by: str,
                      dry_run: bool) -> list[Cleanup]:
    """Records still `running` after NO_LEASE_STALE_AFTER with no lease (older dr, restores).

    Each record is read once: the scan remembers how far it got (SCAN_MARK), and never looks
    further back than RECORD_SCAN."""
    from dr.report.load import run_keys

    stamp_of = "%Y%m%dT%H%M%SZ"
    mark = ctx.store.get_json(SCAN_MARK) or {}
    first = max(str(mark.get("through") or ""), (now - RECORD_SCAN).strftime(stamp_of))
    last = (now - NO_LEASE_STALE_AFTER).strftime(stamp_of)
    out = []
    for key, kind, stamp in run_keys(ctx.store):
        if kind not in RECORD_KINDS or stamp is None or not first <= stamp <= last:
            continue
        run_id = key[len("runs/"):-len(".json")]
        if run_id in leased:
            continue
        try:
            record = ctx.runs.load(run_id)
        except DrError:
            continue
        started = parse_iso_or_none(record.started_at)
        if record.status != "running" or started is None or now - started < NO_LEASE_STALE_AFTER:
            continue
        why = (f"running since {record.started_at} (more than "
               f"{int(NO_LEASE_STALE_AFTER.total_seconds() // 3600)} h) and no live run holds a "
               "lease for it")
        what = f"{run_id} ({record.kind})"
        if dry_run:
            out.append(Cleanup("run record", what, f"stuck at running: {why}", "would mark interrupted"))
            continue
        mark_interrupted(record, f"the run stopped without finishing: {why}", started, now, by)
        try:
            ctx.runs.save(record)
            out.append(Cleanup("run record", what, f"stuck at running: {why}", "marked interrupted"))
        except Exception as exc:  # noqa: BLE001
            out.append(Cleanup("run record", what, f"stuck at running: {why}", "failed", str(exc)))
    if not dry_run and not any(c.status == "failed" for c in out):
        ctx.store.put_json(SCAN_MARK, {"through": last, "at": iso(now), "by": by})
    return out
