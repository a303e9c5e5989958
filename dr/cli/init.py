"""`dr init`: write a commented starter dr.yaml (or one filled from `terraform output -json`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dr.cli.app import App, Outcome
from dr.errors import ConfigError, UsageError


def register(sub) -> None:
    p = sub.add_parser("init", help="write a commented starter dr.yaml",
                       description="Write a commented starter dr.yaml (to --config, default ./dr.yaml).\n\n"
                                   "Example:\n"
                                   "  dr init\n"
                                   "  terraform -chdir=terraform/examples/complete output -json > outputs.json\n"
                                   "  dr init --from-terraform outputs.json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument("--from-terraform", metavar="OUTPUTS.json",
                   help="fill regions, kms.dr_key, state.bucket, notify.sns_topic (and commented "
                        "backup destinations) from `terraform output -json` of "
                        "terraform/examples/complete ('-' reads stdin)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, app: App) -> Outcome:
    from dr.config import STARTER_CONFIG

    path = Path(app.config_path)
    if path.exists() and not args.force:
        raise UsageError(f"{path} already exists; nothing written",
                         hint="pass --force to overwrite it, or --config OTHER.yaml")
    if args.from_terraform:
        text, values = config_from_terraform(read_outputs(args.from_terraform), str(path))
        path.write_text(text)
        return Outcome(
            data={"written": str(path), "from_terraform": args.from_terraform, **values},
            text=f"Wrote {path} from the Terraform outputs in {args.from_terraform}: regions "
                 f"{values['primary_region']} -> {values['dr_region']}, key {values['dr_key']}, "
                 f"state bucket {values['state_bucket']}.\n"
                 f"Add what to protect (rds, s3, mysql: commented examples are in the file), then run "
                 f"`dr validate` and `dr permissions > dr-policy.json`.",
        )
    path.write_text(STARTER_CONFIG)
    return Outcome(
        data={"written": str(path)},
        text=f"Wrote {path}. Edit it, then run `dr validate`.\n"
             f"To try dr without AWS: `dr sandbox start`, and set aws.endpoint_url to the "
             f"endpoint it prints.",
    )


# --- from terraform output -json ---------------------------------------------------------------

#: dr.yaml setting -> the output names that can fill it, first found wins. The names are those of
#: terraform/examples/complete (and of modules/foundation, used as a root module).
TERRAFORM_OUTPUTS = {
    "primary_region": ("primary_region",),
    "dr_region": ("dr_region",),
    "dr_key": ("dr_key_alias", "dr_key_arn"),
    "state_bucket": ("state_bucket", "state_bucket_name"),
    "state_prefix": ("state_prefix",),
    "backup_buckets": ("backup_buckets", "backup_bucket_names"),
    "backup_bucket": ("backup_bucket", "mysql_backup_bucket"),
    "sns_topic": ("sns_topic_arn", "alerts_topic_arn"),
}
_REQUIRED = ("primary_region", "dr_region", "dr_key", "state_bucket")


def read_outputs(source: str) -> dict[str, Any]:
    """`terraform output -json` as {name: value} (the `value` of each output)."""
    try:
        raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--from-terraform: cannot read {source}: {exc.strerror or exc}") from None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--from-terraform: {source} is not JSON ({exc}); write it with "
                          "`terraform output -json > outputs.json`") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"--from-terraform: {source}: expected the JSON object that "
                          "`terraform output -json` prints")
    values = {}
    for name, item in doc.items():
        # `terraform output -json`: {"name": {"sensitive": false, "type": ..., "value": ...}}
        values[name] = item["value"] if isinstance(item, dict) and "value" in item else item
    return values


def _pick(outputs: dict[str, Any], setting: str) -> Any:
    for name in TERRAFORM_OUTPUTS[setting]:
        if outputs.get(name) not in (None, "", []):
            return outputs[name]
    return None


def config_from_terraform(outputs: dict[str, Any], source: str = "dr.yaml") -> tuple[str, dict[str, Any]]:
    """The dr.yaml text for these outputs, checked with the config parser; and the values used."""
    from dr.config import parse_config

    values = {setting: _pick(outputs, setting) for setting in TERRAFORM_OUTPUTS}
    missing = [s for s in _REQUIRED if not isinstance(values[s], str)]
    if missing:
        wanted = "; ".join(f"{s}: one of {', '.join(TERRAFORM_OUTPUTS[s])}" for s in missing)
        raise ConfigError(f"--from-terraform: the outputs lack {wanted} (found: "
                          f"{', '.join(sorted(outputs)) or 'none'}); nothing written",
                          hint="run `terraform output -json` in terraform/examples/complete (or a "
                               "root module with the same outputs) after `terraform apply`")
    buckets = values["backup_buckets"] if isinstance(values["backup_buckets"], list) else []
    buckets = [b for b in buckets if isinstance(b, str)]
    backup = values["backup_bucket"] if isinstance(values["backup_bucket"], str) else \
        (buckets[0] if buckets else None)
    values["backup_buckets"] = buckets
    values["backup_bucket"] = backup
    text = _render(values)
    try:
        parse_config(text, source=source)
    except ConfigError as exc:
        raise ConfigError(f"--from-terraform: the outputs do not make a valid dr.yaml; nothing "
                          f"written:\n{exc}") from None
    return text, {k: v for k, v in values.items() if v not in (None, [])}


def _q(value: str) -> str:
    """A YAML scalar: JSON strings are valid YAML and quote anything odd."""
    return json.dumps(value)


def _render(v: dict[str, Any]) -> str:
    primary, dr = v["primary_region"], v["dr_region"]
    backup = v["backup_bucket"]
    others = [b for b in v["backup_buckets"] if b != backup] or v["backup_buckets"]
    lines = [
        "# dr.yaml written by `dr init --from-terraform` from the outputs of terraform/examples/complete",
        "# (modules/foundation). Add what to protect below, then check it with `dr validate` and",
        "# regenerate the IAM policy the foundation attaches: `dr permissions > dr-policy.json`.",
        "",
        "version: 1",
        "",
        "regions:",
        f"  primary: {_q(primary)}          # where production runs",
        f"  dr: {_q(dr)}               # where terraform created the key and buckets",
        "",
        "aws:",
        "  profile: null",
        "  endpoint_url: null",
        "",
        "objectives:",
        "  rpo: 1h",
        "  rto: 30m",
        "",
        "kms:",
        f"  dr_key: {_q(v['dr_key'])}   # customer managed, rotation on, in {dr} (terraform)",
        "",
        "state:",
        f"  bucket: {_q(v['state_bucket'])}   # versioned, SSE-KMS under the DR key, TLS only (terraform)",
    ]
    if isinstance(v.get("state_prefix"), str) and v["state_prefix"]:
        lines.append(f"  prefix: {_q(v['state_prefix'])}")
    lines += [
        "",
        "rds:                          # RDS instances / Aurora clusters in the primary region",
        "  # - name: app-db",
        "  #   instance: acme-prod-db  # or cluster: acme-aurora",
        "  #   schedule: every 1h",
        "  #   retention: {last: 3, hourly: 24, daily: 7, weekly: 4, monthly: 12}",
        "",
        "s3:                           # buckets copied server-side into a backup bucket in the DR region",
        "  # - name: assets",
        f"  #   source: acme-assets                  # your bucket in {primary}",
    ]
    if others:
        lines.append(f"  #   destination: {others[0]}    # a backup bucket terraform created in {dr}"
                     + (f" (also: {', '.join(others[1:])})" if len(others) > 1 else ""))
    else:
        lines.append(f"  #   destination: acme-assets-dr         # a versioned, SSE-KMS bucket in {dr}")
    lines += [
        "  #   schedule: every 15m",
        "  #   delete: keep",
        "",
        "mysql:                        # self-managed MySQL: dumped, encrypted here, streamed to the DR region",
        "  # - name: office-lamp",
        "  #   host: 10.0.0.5",
        "  #   user: backup",
        "  #   password: {env: DR_MYSQL_PASSWORD}",
        "  #   databases: [app]",
    ]
    if backup:
        lines.append(f"  #   destination: \"s3://{backup}/mysql/office-lamp/\"   # the backup bucket (terraform)")
    else:
        lines.append("  #   destination: \"s3://acme-dr-backups/mysql/office-lamp/\"")
    lines += [
        "  #   tls: required",
        "  #   schedule: every 1h",
        "  #   retention: {daily: 7}",
        "",
        "notify:",
        f"  sns_topic: {_q(v['sns_topic']) if isinstance(v.get('sns_topic'), str) else 'null'}"
        "   # alerts from dr schedule and runbooks (terraform)",
        "",
    ]
    return "\n".join(lines)
