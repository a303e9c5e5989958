"""Template parameter values given by reference in dr.yaml, read at launch time in the launch region.

stack.parameters / stack.dr_parameters values may be plain strings or references (config.Secret):
`{env: NAME}`, `{secretsmanager: NAME_OR_ARN}` (+ `key: JSONKEY`), `{ssm: /NAME}`. They are read
when the stack is launched, in the region it is launched in (the DR region during a failover): a
secret that lives only in the primary region is no help while that region is down. An ARN is read
in the launch region too: its region is replaced by the launch region (a replica secret keeps the
name and the ARN suffix; only the region differs).

Resolved values are for the CloudFormation call only: never put them in a journal, a plan, a run
record or a log. What may be shown is `describe_refs(values)`: each reference as its text.
Errors name the dr.yaml key path, the reference and the region, never a value.

IAM: secretsmanager:GetSecretValue, ssm:GetParameter, and kms:Decrypt on customer managed keys
that encrypt them (see `iam_actions`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dr.config import Secret
from dr.errors import AwsError, ConfigError, DrError, OperationFailed

__all__ = ["describe_refs", "iam_actions", "resolve_parameters", "resolve_secret", "secret_refs"]

_REPLICATE = "aws secretsmanager replicate-secret-to-regions --secret-id {name} --add-replica-regions Region={region}"
_OUTAGE = "a {what} in the primary region does not help during its outage"


def secret_refs(values: Mapping[str, str | Secret]) -> dict[str, Secret]:
    """The parameters given by reference (not written in dr.yaml): name -> Secret."""
    return {name: value for name, value in values.items() if isinstance(value, Secret)}


def describe_refs(values: Mapping[str, str | Secret]) -> dict[str, str]:
    """Safe to show, journal or plan: plain values as they are, references as their text
    (`{secretsmanager: prod/db, key: password}`), never a resolved value."""
    return {name: str(value) for name, value in values.items()}


def iam_actions(values: Mapping[str, str | Secret]) -> tuple[str, ...]:
    """The IAM actions reading these references needs (kms:Decrypt: for customer managed keys)."""
    refs = secret_refs(values).values()
    actions = []
    if any(s.secretsmanager is not None for s in refs):
        actions.append("secretsmanager:GetSecretValue")
    if any(s.ssm is not None for s in refs):
        actions.append("ssm:GetParameter")
    if actions:
        actions.append("kms:Decrypt")
    return tuple(actions)


def resolve_parameters(values: Mapping[str, str | Secret], session: Any, region: str) -> dict[str, str]:
    """Every value as a string, references read in `region` through `session` (a dr.aws.AwsSession).

    Reads every reference before failing, so one error names every parameter that cannot be read."""
    resolved: dict[str, str] = {}
    errors: list[DrError] = []
    cache: dict[str, str] = {}  # secret id -> SecretString: one read for several keys of a secret
    for name, value in values.items():
        if not isinstance(value, Secret):
            resolved[name] = value
            continue
        try:
            resolved[name] = resolve_secret(value, session, region, name=name, _cache=cache)
        except DrError as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        cls = ConfigError if all(isinstance(e, ConfigError) for e in errors) else OperationFailed
        hints = list(dict.fromkeys(e.hint for e in errors if e.hint))
        raise cls(f"{len(errors)} template parameters cannot be read in {region}:\n"
                  + "\n".join(f"  {e.message}" for e in errors), hint="; ".join(hints) or None)
    return resolved


def resolve_secret(secret: Secret, session: Any, region: str | None, *, name: str | None = None,
                   _cache: dict[str, str] | None = None) -> str:
    """One reference's value, read in `region`; errors name secret.where (or `name`)."""
    where = secret.where or (f"parameter {name}" if name else str(secret))
    if not secret.in_aws:
        return Secret(env=secret.env, literal=secret.literal, where=where).resolve()
    if session is None or not region:
        raise ValueError(f"{where}: {secret} is read from AWS: it needs a session and a region")
    if secret.secretsmanager is not None:
        secret_id = _in_region(secret.secretsmanager, region)
        cache = _cache if _cache is not None else {}
        if secret_id not in cache:
            cache[secret_id] = _secret_string(session, secret_id, region, where)
        if secret.key is None:
            return cache[secret_id]
        return _json_key(cache[secret_id], secret.key, secret_id, region, where)
    return _parameter(session, _in_region(secret.ssm, region), region, where)


def _in_region(ref: str, region: str) -> str:
    """A name as it is; an ARN with its region replaced by `region`."""
    parts = ref.split(":", 5)
    if ref.startswith("arn:") and len(parts) == 6:
        parts[3] = region
        return ":".join(parts)
    return ref


def _secret_string(session: Any, secret_id: str, region: str, where: str) -> str:
    try:
        text = session.secrets(region).secret_string(secret_id)
    except AwsError as exc:
        if exc.code == "ResourceNotFoundException":
            raise ConfigError(f"{where}: secret {secret_id} not found in {region}: create it there "
                              f"({_OUTAGE.format(what='secret')}), or replicate it",
                              hint=_REPLICATE.format(name=secret_id, region=region)) from None
        raise _prefixed(exc, where, "secretsmanager:GetSecretValue on the secret") from None
    if text is None:
        raise ConfigError(f"{where}: secret {secret_id} in {region} holds binary data (SecretBinary); "
                          "a template parameter needs a SecretString")
    return text


def _parameter(session: Any, parameter: str, region: str, where: str) -> str:
    try:
        return session.secrets(region).parameter(parameter)
    except AwsError as exc:
        if exc.code in ("ParameterNotFound", "ParameterVersionNotFound"):
            raise ConfigError(f"{where}: SSM parameter {parameter} not found in {region}: create it there "
                              f"({_OUTAGE.format(what='parameter')})",
                              hint=f"aws ssm put-parameter --region {region} --name {parameter} "
                                   "--type SecureString --value ...") from None
        raise _prefixed(exc, where, "ssm:GetParameter on the parameter") from None


def _prefixed(exc: AwsError, where: str, action: str) -> AwsError:
    """aws_call's error (which names the reference and the region), led by the dr.yaml key path."""
    hint = exc.hint
    if exc.code in _DENIED or "KMS" in exc.message:
        hint = f"allow dr's role {action}, and kms:Decrypt on the customer managed KMS key that encrypts it"
    return AwsError(f"{where}: {exc.message}", code=exc.code, hint=hint)


_DENIED = {"AccessDenied", "AccessDeniedException", "DecryptionFailure", "KMSAccessDeniedException"}


def _json_key(text: str, key: str, secret_id: str, region: str, where: str) -> str:
    doc = _json_object(text)
    if doc is None:
        raise ConfigError(f"{where}: secret {secret_id} in {region} is not a JSON object, so it has no "
                          f"key {key!r}", hint=f"drop `key` to pass the whole secret, or store it as JSON "
                                               f'like {{"{key}": "..."}}')
    if key not in doc:
        known = ", ".join(sorted(doc)) or "none"
        raise ConfigError(f"{where}: secret {secret_id} in {region} has no key {key!r} (its keys: {known})",
                          hint="fix `key` in dr.yaml, or add the key to the secret")
    value = doc[key]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    shape = "null" if value is None else "a JSON object" if isinstance(value, dict) else "a JSON list"
    raise ConfigError(f"{where}: key {key!r} of secret {secret_id} in {region} is {shape}: a template "
                      "parameter needs a string, number or true/false")


def _json_object(text: str) -> dict[str, Any] | None:
    """The JSON object in `text`, or None; the parse error (which holds the text) is dropped here."""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    return doc if isinstance(doc, dict) else None
