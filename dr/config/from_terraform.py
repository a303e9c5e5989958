"""A dr.yaml filled from `terraform output -json` of terraform/examples/complete (`dr init --from-terraform`).

Pure: outputs in, dr.yaml text out, checked with the config parser before anything is written.
"""

from __future__ import annotations

import json
from typing import Any

from dr.config import parse_config
from dr.errors import ConfigError


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


def parse_outputs(raw: str, source: str) -> dict[str, Any]:
    """`terraform output -json` text as {name: value} (the `value` of each output)."""
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
