"""`mysql.restore`: load the newest (or a chosen) logical backup into a server reached during
the run, e.g. the database restored or launched by an earlier step."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from dr.runbook.steps.base import Param, StepContext, StepType
from dr.clock import iso


class MysqlRestore(StepType):
    name = "mysql.restore"
    description = ("Restores a MySQL logical backup (a `mysql:` entry of dr.yaml) into the server "
                   "at `to`: fetched from the DR destination, authenticated, decompressed, loaded "
                   "into a staging database, checked against the backup (row counts, sequences, "
                   "CHECKSUM TABLE or across server versions a content hash), then swapped in "
                   "(journaled: a rerun finishes or rolls back a swap a crash interrupted). "
                   "Outputs the backup's time (the RPO of this database) and the restore time. "
                   "Safe to rerun: a database already restored and matching the manifest is left "
                   "as it is.")
    params = (
        Param("resource", "str", required=True, help="the mysql name in dr.yaml"),
        Param("to", "str", required=True,
              help="mysql://user@host:port/DB, e.g. mysql://admin@${steps.db.endpoint}:3306/app"),
        Param("password_env", "str", default=None,
              help="the environment variable holding the target's password"),
        Param("backup", "str", default=None, help="a backup id (default: the newest)"),
        Param("database", "str", default=None, help="which database of a multi-database backup"),
        Param("force", "bool", default=False, help="replace a non-empty target database"),
        Param("allow_mismatch", "list", default=None,
              help="tables (TABLE or DB.TABLE) that may differ from the backup; the swap still "
                   "happens and the step's outputs list them"),
        Param("keep_definers", "bool", default=False,
              help="create objects with their original DEFINER (needs SUPER or SET USER)"),
    )
    outputs = ("backup_id", "snapshot_time", "databases", "rows", "seconds",
               "allowed_mismatches", "warnings")
    iam_actions = ("s3:GetObject", "s3:ListBucket", "kms:Decrypt")
    example = """\
- id: app-data
  type: mysql.restore
  needs: [db]
  with:
    resource: office-lamp
    to: "mysql://admin@${steps.db.endpoint}:3306/app"
    password_env: DR_RESTORE_PASSWORD
"""

    def validate(self, params: Mapping[str, Any], config: Any) -> list[str]:
        name = params.get("resource")
        if isinstance(name, str) and "${" not in name and name not in {m.name for m in config.mysql}:
            known = ", ".join(m.name for m in config.mysql) or "none"
            return [f"resource: no mysql entry named {name!r} in dr.yaml (known: {known})"]
        return []

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        from dr.backup import mysql
        from dr.context import Context

        resource = next(m for m in ctx.config.mysql if m.name == params["resource"])
        password = os.environ.get(params["password_env"]) if params.get("password_env") else None
        context = Context.over(ctx.config, ctx.session, ctx.store, clock=ctx.clock)
        chosen, result = mysql.restore(context, resource, to_uri=params["to"],
                                       backup=params.get("backup"), database=params.get("database"),
                                       force=bool(params.get("force")), password=password,
                                       allow_mismatch=tuple(params.get("allow_mismatch") or ()),
                                       keep_definers=bool(params.get("keep_definers")))
        for line in result.allowed_mismatches:
            ctx.log(f"MISMATCH allowed: {line}")
        for line in result.warnings:
            ctx.log(f"WARNING: {line}")
        return {"backup_id": chosen.id, "snapshot_time": iso(chosen.created),
                "databases": result.databases, "rows": result.rows,
                "seconds": round(result.seconds, 3),
                "allowed_mismatches": list(result.allowed_mismatches),
                "warnings": list(result.warnings)}


STEP_TYPES = (MysqlRestore,)
