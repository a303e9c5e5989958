"""Advice on a valid config: what will not do what the objectives promise, secrets written in dr.yaml."""

from __future__ import annotations

import re

from dr.config.durations import format_duration
from dr.config.model import Config


def advice(config: Config) -> list[str]:
    """Advisory findings: the config is valid but will not do what the objectives promise."""
    found = []
    for i, resource in enumerate(config.rds):
        if resource.schedule.nominal_interval() > config.objectives.rpo:
            found.append(f"rds[{i}] ({resource.name}): schedule {resource.schedule.text} copies less often "
                         f"than the RPO objective {format_duration(config.objectives.rpo)}: the RPO cannot be met")
    for i, m in enumerate(config.mysql):
        if m.schedule.nominal_interval() > config.objectives.rpo:
            found.append(f"mysql[{i}] ({m.name}): schedule {m.schedule.text} backs up less often "
                         f"than the RPO objective {format_duration(config.objectives.rpo)}: the RPO cannot be met")
        for server, where in ((m.server, f"mysql[{i}].password"), (m.verify, f"mysql[{i}].verify.password")):
            if server is not None and server.password is not None and server.password.env is None:
                found.append(f"{where}: the password is written in dr.yaml; use {{env: NAME}} instead")
        if m.server.tls == "off":
            found.append(f"mysql[{i}] ({m.name}): tls is off: the dump crosses the network in clear text")
    for i, m in enumerate(config.mongo):
        if m.uri.env is None and "@" in (m.uri.literal or ""):
            found.append(f"mongo[{i}].uri: credentials are written in dr.yaml; use {{env: NAME}} instead")
    if config.dns and config.dns.tsig and config.dns.tsig.secret.env is None:
        found.append("dns.tsig.secret: the TSIG secret is written in dr.yaml; use {env: NAME} instead")
    for i, bucket in enumerate(config.s3):
        if bucket.schedule.nominal_interval() > config.objectives.rpo:
            found.append(f"s3[{i}] ({bucket.name}): schedule {bucket.schedule.text} copies less often "
                         f"than the RPO objective {format_duration(config.objectives.rpo)}: the RPO cannot be met")
    if config.stack is not None:
        for section, pairs in (("parameters", config.stack.parameters),
                               ("dr_parameters", config.stack.dr_parameters)):
            for name, value in pairs:
                if isinstance(value, str) and looks_secret(name, value):
                    found.append(f"stack.{section}.{name}: written in dr.yaml; use {{env: NAME}}, "
                                 "{secretsmanager: NAME} or {ssm: NAME}")
    return found


_SECRET_NAME_RE = re.compile(r"pass(word|wd|phrase)|secret|token|api_?key|private_?key|credential|access_?key",
                             re.IGNORECASE)
_NOT_A_SECRET_RE = re.compile(r"(Arn|ARN|Name|Id|ID|_arn|_name|_id)$")  # DBSecretArn: where it is, not it


def looks_secret(name: str, value: str = "x") -> bool:
    """Does a template parameter named `name`, set to `value`, look like it holds a secret?
    (An empty value or an ARN does not: it says nothing or only where the secret is.)"""
    return (bool(_SECRET_NAME_RE.search(name)) and not _NOT_A_SECRET_RE.search(name)
            and bool(value) and not value.startswith("arn:"))
