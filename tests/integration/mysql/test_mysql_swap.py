"""Crashes during the swap of `dr restore mysql --force`: kill -9 of dr at every phase and step,
and SIGKILL of mariadbd mid-swap, with a target holding tables, views (one on another, one with
another DEFINER), triggers, a procedure, a function and an event.

`dr restore mysql` runs in a subprocess (`CHILD` below) that stops itself at a given point,
reached deterministically: right after the swap journals a phase (dr.mysql.swap_journal.hook), or right
after an SQL statement of the swap has run (a wrapper around pymysql's Cursor.execute: this one
also works on a dr without a journal). It then either SIGKILLs itself or, for a server crash,
writes a marker file and waits while the test SIGKILLs and restarts mariadbd.

Afterwards, `--resume` (or a plain rerun) must leave the target *exactly* the new backup (once
every new table was in place) or *exactly* the old target (before that): SHOW CREATE of every
table, view, trigger, routine and event and CHECKSUM TABLE of every table are compared with
those of an uninterrupted restore, or with the target before; and no `__dr_*` database (staging,
old tables, swap journal) may be left.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dr.cli import main
from dr.mysql import connect
from tests.support.mariadb import mariadb, mariadb_server, start_or_skip  # noqa: F401

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
SRC, TGT = "swp_src", "swp_tgt"

CHILD = """
import os, re, signal, sys, time
import pymysql.cursors
from dr.cli import main

event, pattern, hold = sys.argv[1:4]


def stop(what):
    if hold != "-":  # a server crash: wait while the test kills and restarts mariadbd
        with open(hold, "w") as f:
            f.write(what)
        while os.path.exists(hold):
            time.sleep(0.02)
        return
    os.kill(os.getpid(), signal.SIGKILL)


if event != "-":
    from dr.mysql import swap_journal

    def hook(e):
        if e.startswith(event):
            swap_journal.hook = None
            stop(e)

    swap_journal.hook = hook
if pattern != "-":
    rx, execute, fired = re.compile(pattern), pymysql.cursors.Cursor.execute, []

    def patched(self, query, args=None):
        result = execute(self, query, args)
        text = query.decode("utf-8", "replace") if isinstance(query, bytes) else query
        if not fired and rx.search(text):
            fired.append(1)
            stop(text)
        return result

    pymysql.cursors.Cursor.execute = patched
sys.exit(main(sys.argv[4:]))
"""


# -- the world: a source, a backup of it, an old target ------------------------------------------

def sql(spec, *statements, db=None):
    conn = connect(spec)
    try:
        with conn.cursor() as cur:
            if db:
                cur.execute(f"USE `{db}`")
            for s in statements:
                cur.execute(s)
    finally:
        conn.close()


def make_source(spec):
    sql(spec, f"DROP DATABASE IF EXISTS {SRC}", f"CREATE DATABASE {SRC}")
    sql(spec,
        "CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(50), d DATETIME(6), b BLOB)",
        "INSERT INTO a SELECT seq, CONCAT('new ', seq), '2024-01-02 03:04:05.5', "
        "REPEAT(CHAR(seq % 256), 30) FROM seq_1_to_800",
        "CREATE TABLE b (id INT PRIMARY KEY, a_id INT, KEY (a_id))",
        "INSERT INTO b SELECT seq, seq % 800 + 1 FROM seq_1_to_300",
        "CREATE TABLE log (n INT)",
        "CREATE VIEW va AS SELECT id, v FROM a WHERE id < 100",
        "CREATE VIEW vb AS SELECT COUNT(*) AS n FROM va",
        "CREATE TRIGGER ta BEFORE INSERT ON a FOR EACH ROW SET NEW.v = UPPER(NEW.v)",
        "CREATE TRIGGER tb AFTER INSERT ON b FOR EACH ROW INSERT INTO log VALUES (NEW.id)",
        "CREATE PROCEDURE pa() SELECT COUNT(*) FROM a",
        "CREATE FUNCTION fa(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
        "CREATE EVENT ea ON SCHEDULE EVERY 1 HOUR STARTS '2030-01-01 00:00:00' DISABLE "
        "DO DELETE FROM log",
        db=SRC)


def make_old_target(spec):
    """The target before: some names shared with the backup (a, va, ta, pa), others its own."""
    sql(spec, f"DROP DATABASE IF EXISTS {TGT}", f"CREATE DATABASE {TGT}")
    sql(spec,
        "CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(50))",
        "INSERT INTO a SELECT seq, CONCAT('old ', seq) FROM seq_1_to_50",
        "CREATE TABLE old_only (k VARCHAR(10) PRIMARY KEY, n INT)",
        "INSERT INTO old_only VALUES ('x', 1), ('y', 2)",
        "CREATE VIEW va AS SELECT id FROM a WHERE id > 10",
        "CREATE DEFINER=`root`@`localhost` SQL SECURITY INVOKER VIEW v_old AS "
        "SELECT a.id, o.n FROM a JOIN old_only o ON o.n = a.id",
        "CREATE VIEW v_on_v AS SELECT COUNT(*) AS c FROM v_old",
        "CREATE TRIGGER ta BEFORE INSERT ON a FOR EACH ROW SET NEW.v = LOWER(NEW.v)",
        "CREATE TRIGGER t_old1 BEFORE UPDATE ON old_only FOR EACH ROW SET NEW.n = NEW.n + 1",
        "CREATE TRIGGER t_old2 BEFORE UPDATE ON old_only FOR EACH ROW SET NEW.n = NEW.n * 2",
        "CREATE PROCEDURE pa() SELECT 'old'",
        "CREATE DEFINER=`root`@`localhost` FUNCTION f_old() RETURNS INT RETURN 7",
        "CREATE EVENT e_old ON SCHEDULE EVERY 1 DAY STARTS '2031-05-05 05:05:05' DISABLE "
        "COMMENT 'old' DO UPDATE old_only SET n = 0",
        db=TGT)


def snapshot(spec, db):
    """SHOW CREATE of every object and CHECKSUM TABLE of every table (None: no database)."""
    conn = connect(spec)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME=%s", (db,))
            if cur.fetchone() is None:
                return None
            out = {}
            cur.execute("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                        "WHERE TABLE_SCHEMA=%s", (db,))
            for name, kind in cur.fetchall():
                if kind == "VIEW":
                    cur.execute(f"SHOW CREATE VIEW `{db}`.`{name}`")
                    out[("VIEW", name)] = cur.fetchone()
                else:
                    cur.execute(f"SHOW CREATE TABLE `{db}`.`{name}`")
                    create = cur.fetchone()[1]
                    cur.execute(f"CHECKSUM TABLE `{db}`.`{name}`")
                    out[("TABLE", name)] = (create, cur.fetchone()[1])
            cur.execute("SELECT TRIGGER_NAME, ACTION_ORDER FROM information_schema.TRIGGERS "
                        "WHERE TRIGGER_SCHEMA=%s", (db,))
            for name, order in cur.fetchall():
                cur.execute(f"SHOW CREATE TRIGGER `{db}`.`{name}`")
                row = cur.fetchone()
                out[("TRIGGER", name)] = (row[:6], order)  # all but the Created time
            cur.execute("SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES "
                        "WHERE ROUTINE_SCHEMA=%s", (db,))
            for kind, name in cur.fetchall():
                cur.execute(f"SHOW CREATE {kind} `{db}`.`{name}`")
                out[(kind, name)] = cur.fetchone()
            cur.execute("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA=%s",
                        (db,))
            for (name,) in cur.fetchall():
                cur.execute(f"SHOW CREATE EVENT `{db}`.`{name}`")
                out[("EVENT", name)] = cur.fetchone()
            return out
    finally:
        conn.close()


def leftovers(spec):
    conn = connect(spec)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                        "WHERE SCHEMA_NAME LIKE '%\\_\\_dr\\_%'")
            return sorted(r[0] for r in cur.fetchall())
    finally:
        conn.close()


def backed_up(server_spec, tmp: Path, source: str) -> Path:
    """A dr.yaml whose mysql entry `lamp` backs up `source`, and one backup of it; its path."""
    key = tmp / "k.key"
    assert main(["keygen", str(key)]) == 0
    config = tmp / "dr.yaml"
    config.write_text(
        "version: 1\nregions: {primary: us-east-1, dr: us-west-2}\n"
        "objectives: {rpo: 1h, rto: 30m}\nkms: {dr_key: alias/dr-backups}\n"
        f"state: {{path: '{tmp / 'state'}'}}\n"
        f"mysql:\n  - {{name: lamp, host: 127.0.0.1, port: {server_spec.port}, user: root, "
        f"tls: 'off', databases: [{source}], destination: 'file://{tmp}/backups', "
        f"schedule: every 1h, retention: {{last: 3}}, key_file: '{key}'}}\n")
    assert main(["--config", str(config), "backup", "run", "--only", "mysql"]) == 0
    return config


class World:
    """A backup of SRC in a file destination, and the two states the target may end in."""

    def __init__(self, server_spec, tmp: Path):
        self.spec = server_spec
        self.tmp = tmp
        make_source(server_spec)
        self.config = backed_up(server_spec, tmp, SRC)
        make_old_target(server_spec)
        self.old = snapshot(server_spec, TGT)
        assert self.restore("--force") == 0
        self.new = snapshot(server_spec, TGT)
        assert self.old != self.new and len(self.new) == 10 and len(self.old) == 11
        assert leftovers(server_spec) == []

    def uri(self, db=TGT):
        return f"mysql://root@127.0.0.1:{self.spec.port}/{db}?tls=off"

    def args(self, *extra, db=TGT):
        return ["--config", str(self.config), "restore", "mysql", "--name", "lamp",
                "--to", self.uri(db), *extra]

    def restore(self, *extra, db=TGT):
        return main(self.args(*extra, db=db))

    def child(self, *extra, event=None, statement=None, hold=None, db=TGT):
        """Run `dr restore mysql ...` in a subprocess that stops at `event` or `statement`."""
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        return subprocess.Popen(
            [sys.executable, "-c", CHILD, event or "-", statement or "-", str(hold or "-"),
             *self.args(*extra, db=db)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def crash(self, *extra, event=None, statement=None, db=TGT):
        proc = self.child(*extra, event=event, statement=statement, db=db)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == -9, f"the child was not killed ({proc.returncode}):\n{err}"


def journals(spec):
    return [d for d in leftovers(spec) if "__dr_swap_" in d]


@pytest.fixture(scope="module")
def world(mariadb, tmp_path_factory):
    return World(mariadb, tmp_path_factory.mktemp("swap"))


# -- kill -9 of dr at every phase and step -------------------------------------------------------

# (event journaled by the swap | SQL statement just run, the state a --resume must leave)
KILLS = [
    pytest.param("phase:prepared", None, "old", id="journaled-prepared"),
    pytest.param("phase:drop-old-views", None, "old", id="journaled-drop-old-views"),
    pytest.param(None, r"^DROP TRIGGER", "old", id="after-the-first-trigger-dropped"),
    pytest.param(None, r"^DROP VIEW", "old", id="after-the-first-view-dropped"),
    pytest.param("phase:rename", None, "old", id="journaled-rename"),
    pytest.param(None, r"^RENAME TABLE", "new", id="after-the-rename"),
    pytest.param("phase:drop-old-routines", None, "new", id="journaled-drop-old-routines"),
    pytest.param(None, r"^DROP (PROCEDURE|FUNCTION)", "new", id="after-the-first-routine-dropped"),
    pytest.param(None, r"^DROP EVENT", "new", id="after-the-event-dropped"),
    pytest.param("phase:create-new", None, "new", id="journaled-create-new"),
    pytest.param(None, r"^CREATE (PROCEDURE|FUNCTION)", "new", id="after-the-first-routine-made"),
    pytest.param(None, r"^CREATE .*VIEW", "new", id="after-the-first-view-made"),
    pytest.param(None, r"^CREATE .*TRIGGER", "new", id="after-the-first-trigger-made"),
    pytest.param("phase:committed", None, "new", id="journaled-committed"),
    pytest.param(None, r"^DROP DATABASE .*__dr_old_", "new", id="after-the-old-tables-dropped"),
]


@pytest.mark.parametrize("event, statement, expected", KILLS)
def test_kill_9_then_resume_finishes_or_rolls_back_exactly(world, capsys, event, statement,
                                                           expected):
    make_old_target(world.spec)
    world.crash("--force", event=event, statement=statement)
    assert len(journals(world.spec)) == 1  # the swap left its journal on the server
    capsys.readouterr()
    code = world.restore("--resume")
    out = capsys.readouterr().out
    assert snapshot(world.spec, TGT) == (world.new if expected == "new" else world.old)
    assert leftovers(world.spec) == []
    if expected == "new":
        assert code == 0 and "was finished from its journal" in out
    else:
        assert code == 1 and "was rolled back" in out and "exactly as it was" in out
    capsys.readouterr()
    assert world.restore("--resume") == 0  # nothing left to do
    assert "nothing to do" in capsys.readouterr().out


@pytest.mark.parametrize("event, statement, finished", [
    pytest.param(None, r"^DROP VIEW", False, id="before-the-rename"),
    pytest.param(None, r"^CREATE .*VIEW", True, id="after-the-rename"),
])
def test_a_plain_rerun_settles_the_crash_then_restores(world, capsys, event, statement,
                                                       finished):
    make_old_target(world.spec)
    world.crash("--force", event=event, statement=statement)
    capsys.readouterr()
    assert world.restore("--force") == 0
    out = capsys.readouterr().out
    assert snapshot(world.spec, TGT) == world.new and leftovers(world.spec) == []
    if finished:  # the interrupted restore was of this very backup: it is not done twice
        assert out.startswith("Finished the interrupted restore of backup lamp-")
        assert "was finished from its journal" in out
    else:
        assert out.startswith("Restored backup lamp-") and "was rolled back" in out


def test_a_crash_into_a_new_database_is_finished_by_a_rerun_without_force(world, capsys):
    """Before: the rerun refused (the target was no longer empty) and left __dr_* behind."""
    sql(world.spec, "DROP DATABASE IF EXISTS swp_new")
    world.crash(statement=r"^RENAME TABLE", db="swp_new")
    capsys.readouterr()
    assert world.restore(db="swp_new") == 0
    assert capsys.readouterr().out.startswith("Finished the interrupted restore")
    assert leftovers(world.spec) == []
    new = snapshot(world.spec, "swp_new")
    assert {k: v[1] for k, v in new.items() if k[0] == "TABLE"} == \
        {k: v[1] for k, v in world.new.items() if k[0] == "TABLE"}
    assert set(new) == set(world.new)
    sql(world.spec, "DROP DATABASE swp_new")


def test_a_crash_before_the_rename_into_a_new_database_drops_it_again(world, capsys):
    sql(world.spec, "DROP DATABASE IF EXISTS swp_new")
    world.crash(event="phase:rename", db="swp_new")
    assert world.restore("--resume", db="swp_new") == 1
    assert snapshot(world.spec, "swp_new") is None and leftovers(world.spec) == []


@pytest.mark.parametrize("first, second, expected", [
    pytest.param(r"^DROP VIEW", r"^CREATE .*VIEW", "old", id="rolling-back"),
    pytest.param(r"^RENAME TABLE", r"^CREATE .*TRIGGER", "new", id="rolling-forward"),
])
def test_a_crash_while_settling_is_settled_by_the_next_run(world, first, second, expected):
    make_old_target(world.spec)
    world.crash("--force", statement=first)
    world.crash("--resume", statement=second)
    assert len(journals(world.spec)) == 1
    world.restore("--resume")
    assert snapshot(world.spec, TGT) == (world.new if expected == "new" else world.old)
    assert leftovers(world.spec) == []


def test_a_live_swap_is_not_touched_by_another_run(world, tmp_path, capsys):
    make_old_target(world.spec)
    hold = tmp_path / "hold"
    proc = world.child("--force", event="phase:create-new", hold=hold)
    try:
        deadline = time.monotonic() + 120
        while not hold.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        capsys.readouterr()
        assert world.restore("--resume") == 1  # it holds the swap lock: it is alive
        assert "another restore is swapping into swp_tgt right now" in capsys.readouterr().err
        assert len(journals(world.spec)) == 1
    finally:
        hold.unlink(missing_ok=True)
    assert proc.wait(timeout=120) == 0
    assert snapshot(world.spec, TGT) == world.new and leftovers(world.spec) == []


class SequenceWorld(World):
    """A backup of a database with a table whose DEFAULT calls NEXTVAL on its sequence: the
    server binds that to the staging database the table was created in, so the swap must point
    it at the target, also when a crash interrupted it."""

    def __init__(self, server_spec, tmp: Path):
        self.spec = server_spec
        self.tmp = tmp
        sql(server_spec, "DROP DATABASE IF EXISTS swp_seq", "CREATE DATABASE swp_seq")
        sql(server_spec, "CREATE SEQUENCE s START WITH 100 INCREMENT BY 5",
            "CREATE TABLE t (id INT PRIMARY KEY DEFAULT NEXTVAL(s), x INT)",
            "INSERT INTO t (x) VALUES (1), (2)", db="swp_seq")
        self.config = backed_up(server_spec, tmp, "swp_seq")


@pytest.mark.parametrize("event, statement", [
    pytest.param(None, r"^RENAME TABLE", id="after-the-rename"),
    pytest.param("step:repointed", None, id="after-the-defaults-repointed"),
    pytest.param("phase:create-new", None, id="journaled-create-new"),
])
def test_a_finished_swap_points_sequence_defaults_at_the_target(mariadb, tmp_path, capsys,
                                                                 event, statement):
    seqs = SequenceWorld(mariadb, tmp_path)
    sql(mariadb, "DROP DATABASE IF EXISTS swp_seq_tgt")
    seqs.crash(event=event, statement=statement, db="swp_seq_tgt")
    capsys.readouterr()
    assert seqs.restore("--resume", db="swp_seq_tgt") == 0
    assert "was finished from its journal" in capsys.readouterr().out
    assert leftovers(mariadb) == []
    conn = connect(mariadb)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW CREATE TABLE swp_seq_tgt.t")
            create = cur.fetchone()[1]
            assert "nextval(`swp_seq_tgt`.`s`)" in create and "__dr_" not in create
            cur.execute("INSERT INTO swp_seq_tgt.t (x) VALUES (3)")
            cur.execute("SELECT id FROM swp_seq_tgt.t WHERE x = 3")
            inserted = cur.fetchone()[0]
            cur.execute("SELECT PREVIOUS VALUE FOR swp_seq_tgt.s")  # the target's sequence
            assert cur.fetchone()[0] == inserted
    finally:
        conn.close()
    sql(mariadb, "DROP DATABASE swp_seq_tgt", "DROP DATABASE swp_seq")


# -- the server dies mid-swap ------------------------------------------------------------------

@pytest.fixture(scope="module")
def doomed(tmp_path_factory):
    base = tmp_path_factory.mktemp("swap-doomed")
    server = start_or_skip(base / "server")
    try:
        yield server, World(server.spec, base)
    finally:
        server.stop()


@pytest.mark.parametrize("event, statement, expected", [
    pytest.param("phase:drop-old-views", None, "old", id="journaled-drop-old-views"),
    pytest.param(None, r"^DROP TRIGGER", "old", id="after-the-first-trigger-dropped"),
    pytest.param(None, r"^RENAME TABLE", "new", id="after-the-rename"),
    pytest.param(None, r"^CREATE .*VIEW", "new", id="after-the-first-view-made"),
])
def test_server_killed_mid_swap_then_resume(doomed, tmp_path, capsys, event, statement,
                                            expected):
    server, world = doomed
    make_old_target(server.spec)
    hold = tmp_path / "hold"
    proc = world.child("--force", event=event, statement=statement, hold=hold)
    deadline = time.monotonic() + 120
    while not hold.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    server.kill()  # SIGKILL mariadbd in the middle of the swap
    hold.unlink()
    out, err = proc.communicate(timeout=120)
    # dr cannot put the target back without its server, and says so: not "left as it was"
    assert proc.returncode == 1, err
    assert "could not be put back" in err and "journaled on the server" in err, err
    assert "left as it was" not in err and "put back as it was" not in err
    server.start()
    capsys.readouterr()
    code = world.restore("--resume")
    assert snapshot(server.spec, TGT) == (world.new if expected == "new" else world.old)
    assert leftovers(server.spec) == []
    assert code == (0 if expected == "new" else 1)
