"""`dr demo`: the whole cycle on an embedded two-region AWS, no account needed.

It starts a moto server in this process, seeds a small startup's production (an encrypted RDS
MySQL instance, an Aurora cluster, a key in each region, one hand-made snapshot), and runs the
real commands against it through `endpoint_url`, as a user would against LocalStack or AWS."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from dr.cli.app import App, Outcome


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="the whole cycle on an embedded two-region sandbox",
        description="Run the whole cycle on an embedded two-region AWS simulation, no AWS account "
                    "needed: backups of RDS, Aurora, S3 (and MySQL when MariaDB is installed), list, "
                    "verify, prune, a drill with RTO and RPO, MongoDB health, and the report. It keeps "
                    "its dr.yaml, run records and HTML report (a few hundred kB) and removes the rest."
                    "\n\nExample:\n  dr demo\n  dr demo --keep ./demo",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keep", metavar="DIR",
                   help="keep the demo's dr.yaml and run records in DIR (default: a temp dir)")
    p.set_defaults(handler=run)


def _say(app: App, text: str = "") -> None:
    # Narration goes to stdout in text mode; with --output json, stdout holds only the document.
    print(text, file=sys.stdout if app.output == "text" else sys.stderr, flush=True)


def run(args: argparse.Namespace, app: App) -> Outcome:
    from dr.aws import seed
    from dr.sandbox import world
    from dr.sandbox.server import EmbeddedAws

    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="dr-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"workdir": str(workdir)}
    with EmbeddedAws() as aws:
        from dr.aws import AwsSession

        session = AwsSession(endpoint_url=aws.endpoint)
        seeded = world.seed(session)
        config_path = workdir / "dr.yaml"
        config_path.write_text(world.config_text(aws.endpoint, workdir / "state"))
        demo_app = App(config_path=str(config_path), output="text", command="dr demo")
        _say(app, f"1. A two-region AWS simulation is running at {aws.endpoint}.")
        _say(app, f"   Production in {world.PRIMARY}: RDS MySQL instance {world.INSTANCE} and "
                  f"Aurora cluster {world.CLUSTER}, both encrypted with a {world.PRIMARY} key,")
        _say(app, f"   plus a snapshot someone made by hand ({world.HAND_MADE_SNAPSHOT}).")
        _say(app, f"   User uploads in s3://{world.ASSETS} ({world.PRIMARY}).")
        _say(app, f"   DR region {world.DR}: the key {world.DR_KEY_ALIAS} and an empty, versioned "
                  f"bucket s3://{world.ASSETS_DR}.")
        _say(app, f"   dr.yaml: {config_path}")

        code = _backups(app, demo_app, summary)
        if code:
            return Outcome(data=summary, exit_code=code)

        _say(app)
        _say(app, "7. MySQL on the office LAMP box: dump (one consistent snapshot), compress, "
                  "encrypt here, stream to the DR bucket; restore it elsewhere and compare.")
        summary["mysql"] = _mysql_part(app, config_path)

        code = _drill(app, demo_app, summary)
        if code:
            return Outcome(data=summary, exit_code=code)
        _mongo(app, summary)

        proof = seed.proof(session, seeded.dr_key_arn)
        summary["proof"] = proof
        _say(app)
        _say(app, f"10. Checked in {world.DR} with plain boto3, not with dr:")
        for p in proof:
            _say(app, f"   {p['id']}: {p['status']}, encrypted={p['encrypted']}, "
                      f"DR key={'yes' if p['dr_key'] else 'NO'}, tags {p['tags']}")
        _report(app, config_path, workdir / "dr-report.html", summary)
    _say(app)
    _say(app, f"Run records are in {workdir / 'state'}: `dr --config {config_path} runs list` "
              "shows them.")
    _say(app, "Try it yourself: `dr sandbox start --seed`, then "
              "`dr --config dr.sandbox.yaml backup run`.")
    return Outcome(data=summary, text="")


# What steps 2-6 show, as the user would type it. (They run through the command's own parser and
# handler because the backup text is rendered there; the other steps call services.)
BACKUP_STEPS = (
    ("2. dr backup run: snapshot each database and copy it to the DR region under the "
     "DR key; copy the uploads bucket server-side, under the same key.", "run", ("backup", "run")),
    ("3. dr backup run again, in the same slot: no second snapshot (deterministic "
     "names), no object copied twice (the listings are diffed).", "run", ("backup", "run")),
    ("4. dr backup list: every recovery point in both regions, newest first.", "list",
     ("backup", "list")),
    ("5. dr backup verify --deep all: the DR bucket against its source, object by "
     "object: keys and sizes, then each copy's headers, metadata, tags and KMS key.", "verify",
     ("backup", "verify", "--deep", "all")),
    ("6. dr backup prune --dry-run: what retention would keep, and why.", "prune",
     ("backup", "prune", "--dry-run")),
)


def _command(demo_app: App, *argv: str) -> Outcome:
    """One `dr` command line, parsed by the real parser (its defaults), run against the demo."""
    from dr.cli import build_parser

    args = build_parser().parse_args(list(argv))
    return args.handler(args, demo_app)


def _backups(app: App, demo_app: App, summary: dict) -> int:
    for title, key, argv in BACKUP_STEPS:
        _say(app)
        _say(app, title)
        outcome = _command(demo_app, *argv)
        _say(app, _indent(outcome.text))
        summary[key] = outcome.data
        if outcome.exit_code:
            _say(app, "The demo stopped: the step above failed.")
            return outcome.exit_code
    return 0


def _drill(app: App, demo_app: App, summary: dict) -> int:
    from dr.failover import service as failover
    from dr.render.runbook import failover_text
    from dr.sandbox import world

    _say(app)
    _say(app, f"8. dr drill: relaunch the site in {world.DR} from the copied snapshot under "
              "drill names, check its health, flip a drill DNS record (never www), measure "
              "RTO and RPO, tear it all down.")
    _say(app, "   (The sandbox runs no web servers and models no time: the health check "
              "probes the simulator itself, and the RTO below is the engine's own time.)")
    _, result, measured = failover.run(demo_app.context(), name="drill", runbook=None, drill=True,
                                       keep=False, resume=None, take_over=False)
    again = (None if result.status == "completed" or result.dry_run else
             f"dr --config {demo_app.config_path} drill --resume {result.run_id}")
    summary["drill"] = {"run": result.to_dict(), "measured": measured.to_dict() if measured else None,
                        "resume_command": again}
    _say(app, _indent(failover_text(result, measured, again)))
    return failover.exit_code(result, measured, True)


def _mongo(app: App, summary: dict) -> None:
    from dr.render.mongo import report_text
    from dr.sandbox import world
    from dr.sandbox.mongo import simulated_report

    _say(app)
    _say(app, "9. dr mongo status: a MongoDB replica set spread over three regions "
              "(SIMULATED members on 127.0.0.1: no real mongod here).")
    mongo_report = simulated_report(world.PRIMARY, dr_region=world.DR)
    summary["mongo"] = mongo_report.to_dict()
    _say(app, _indent(report_text(mongo_report)))


def _report(app: App, config_path: Path, report_path: Path, summary: dict) -> None:
    from dr.report import compute_report, render
    from dr.report.load import load_records

    _say(app)
    _say(app, "11. dr report: RPO now and over time per resource, the drill's RTO and RPO, "
              "in one self-contained HTML page.")
    # dr.yaml has the mysql section now (step 7): read it again so the report shows that backup
    ctx = App(config_path=str(config_path), output="text", command="dr demo").context()
    now = ctx.clock.now()
    loaded = load_records(ctx.store, ctx.config, now, 30)
    report = compute_report(loaded.records, ctx.config, now, 30, warnings=loaded.warnings)
    report_path.write_text(render(report, "html"))
    summary["report"] = str(report_path)
    _say(app, _indent(render(report, "text")))
    _say(app, f"   HTML report: {report_path}")


def _mysql_part(app: App, config_path: Path) -> dict:
    """Back up and restore a throwaway MariaDB, when this machine has one."""
    from dr.sandbox import mariadb

    if mariadb.binaries() is None:
        _say(app, f"   skipped: {mariadb.INSTALL_HINT}")
        return {"skipped": mariadb.INSTALL_HINT}

    datadir = config_path.parent / "mariadb"
    try:
        return _mysql_round_trip(app, config_path, datadir)
    finally:  # ~115 MB of MariaDB files: the demo keeps only its dr.yaml, records and report
        shutil.rmtree(datadir, ignore_errors=True)


def _mysql_round_trip(app: App, config_path: Path, datadir: Path) -> dict:
    from dr.backup import mysql
    from dr.sandbox import mariadb, world

    with mariadb.MariaDBServer(datadir) as server:
        world.seed_shop(server.spec)
        config_path.write_text(config_path.read_text() + world.mysql_config_text(server.port))
        my_app = App(config_path=str(config_path), output="text", command="dr demo")
        out = _command(my_app, "backup", "run", "--only", "mysql")
        _say(app, _indent(out.text))
        if out.exit_code:
            return {"backup": out.data, "exit_code": out.exit_code}
        ctx = my_app.context()
        resource = ctx.config.mysql[0]
        chosen, result = mysql.restore(
            ctx, resource, to_uri=f"mysql://root@127.0.0.1:{server.port}/shop_restored?tls=off")
        same = _checksums(server.spec, "shop") == _checksums(server.spec, "shop_restored")
        objects = _objects(server.spec, "shop_restored")
        _say(app, f"   restored {chosen.id} as shop_restored: {result.rows} rows in "
                  f"{len(result.tables)} tables in {result.seconds:.2f}s (this database's RTO); "
                  f"CHECKSUM TABLE {'matches' if same else 'DIFFERS'} on every table; views "
                  f"{objects['views'] or '<none>'}, triggers {objects['triggers'] or '<none>'}.")
        return {"backup_id": chosen.id, "rows": result.rows, "restore_seconds": result.seconds,
                "checksums_match": same, **objects}


def _objects(spec, db: str) -> dict:
    from dr.mysql import connect

    conn = connect(spec)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA=%s", (db,))
            views = sorted(r[0] for r in cur.fetchall())
            cur.execute("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS "
                        "WHERE TRIGGER_SCHEMA=%s", (db,))
            return {"views": views, "triggers": sorted(r[0] for r in cur.fetchall())}
    finally:
        conn.close()


def _checksums(spec, db: str) -> dict:
    from dr.mysql import connect

    conn = connect(spec)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s "
                        "AND TABLE_TYPE='BASE TABLE'", (db,))
            names = sorted(r[0] for r in cur.fetchall())
            cur.execute("CHECKSUM TABLE " + ", ".join(f"`{db}`.`{n}`" for n in names))
            return {r[0].split(".", 1)[1]: r[1] for r in cur.fetchall()}
    finally:
        conn.close()


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())
