"""The failover sections of dr.yaml: stack (and its parameter references), health, dns."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from dr.config.checks import is_whole, read_duration, read_secret
from dr.config.model import DnsSettings, HealthSettings, Secret, StackSettings, TsigSettings
from dr.yamlnodes import Node, Problems

_DNS_NAME_RE = re.compile(r"([A-Za-z0-9_*]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)+")
_REF_KINDS = ("env", "secretsmanager", "ssm")
_REF_KEYS = _REF_KINDS + ("key",)
_EXPECT_PARAM = ("expected a plain value (string, number or true/false) or a reference: {env: NAME}, "
                 "{secretsmanager: NAME} (with key: JSONKEY for one key of a JSON secret) or {ssm: /NAME}")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_ID_RE = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}|arn:aws[-a-z]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:\S+")
_SSM_NAME_RE = re.compile(r"/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*(:[A-Za-z0-9_.-]+)?"
                          r"|arn:aws[-a-z]*:ssm:[a-z0-9-]+:\d{12}:parameter/\S+")


def _param_value(ck: Problems, path: str, node: Node) -> str | Secret | None:
    """A template parameter value: a plain scalar (as a string), or a reference Secret."""
    if node.value is None or isinstance(node.value, list):
        ck.bad(path, node, _EXPECT_PARAM)
        return None
    if not isinstance(node.value, dict):
        return str(node.value).lower() if isinstance(node.value, bool) else str(node.value)
    before = len(ck.problems)
    items = ck.mapping(path, node, _REF_KEYS, _EXPECT_PARAM)
    kinds = [k for k in _REF_KINDS if k in items]
    if len(kinds) > 1:
        ck.add(path, node.line, f"set exactly one of {', '.join(kinds)}, not both")
    elif not kinds and len(ck.problems) == before:
        ck.bad(path, node, _EXPECT_PARAM)
    found = {}
    for kind, regex, expected in (
            ("env", _ENV_NAME_RE, "expected an environment variable name like DR_DB_PASSWORD"),
            ("secretsmanager", _SECRET_ID_RE, "expected a Secrets Manager secret name (like prod/db) or ARN"),
            ("ssm", _SSM_NAME_RE, "expected an SSM parameter name (like /prod/db/password) or ARN")):
        child = items.get(kind)
        if child is not None and not (isinstance(child.value, str) and regex.fullmatch(child.value)):
            ck.bad(f"{path}.{kind}", child, expected)
        elif child is not None:
            found[kind] = child.value
    key = items.get("key")
    if key is not None and kinds and "secretsmanager" not in items:
        ck.add(f"{path}.key", key.line, "only applies with secretsmanager (one key of a JSON secret)")
    elif key is not None and not (isinstance(key.value, str) and key.value):
        ck.bad(f"{path}.key", key, "expected the name of a key in the secret's JSON, like password")
    if len(ck.problems) > before:
        return None
    return Secret(**found, key=key.value if key is not None else None, where=path)


def _parameter_map(ck: Problems, path: str, node: Node | None) -> tuple[tuple[str, str | Secret], ...]:
    if node is None or node.value is None:
        return ()
    if not isinstance(node.value, dict):
        ck.bad(path, node, "expected a mapping of names to values, like {InstanceType: t3.small}")
        return ()
    out = []
    for key, child in node.value.items():
        value = _param_value(ck, f"{path}.{key}", child)
        if value is not None:
            out.append((key, value))
    return tuple(out)


def read_stack(ck: Problems, top: Node, base_dir: Path) -> StackSettings | None:
    node, items = ck.section(top, "stack", ("name", "template", "parameters", "dr_parameters",
                                            "snapshot_parameter", "capabilities"),
                             "expected a mapping like {name: acme-web, template: templates/lamp.yaml}",
                             required=False)
    if items is None:
        return None
    before = len(ck.problems)
    name = ck.required("stack", node, "name")
    if name is not None and not (isinstance(name.value, str)
                                 and re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,127}", name.value)):
        ck.bad("stack.name", name, "expected a CloudFormation stack name (letters, digits, hyphens)")
    template = ck.required("stack", node, "template")
    template_path = None
    if template is not None:
        template_path = (base_dir / str(template.value)).absolute()
        if not template_path.is_file():
            ck.bad("stack.template", template, f"expected a template file; {template_path} does not exist")
    snap = items.get("snapshot_parameter")
    if snap is not None and not (isinstance(snap.value, str) and snap.value):
        ck.bad("stack.snapshot_parameter", snap, "expected the name of a template parameter")
    caps = items.get("capabilities")
    allowed_caps = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND")
    if caps is not None and not (isinstance(caps.value, list) and all(c.value in allowed_caps for c in caps.value)):
        ck.add("stack.capabilities", caps.line, f"expected a list of {', '.join(allowed_caps)}")
    params = _parameter_map(ck, "stack.parameters", items.get("parameters"))
    dr_params = _parameter_map(ck, "stack.dr_parameters", items.get("dr_parameters"))
    if len(ck.problems) > before:
        return None
    return StackSettings(name=name.value, template=template_path, parameters=params, dr_parameters=dr_params,
                         snapshot_parameter=snap.value if snap is not None else None,
                         capabilities=tuple(c.value for c in caps.value) if caps is not None else ())


def read_health(ck: Problems, top: Node) -> HealthSettings | None:
    node, items = ck.section(top, "health", ("url", "consecutive", "timeout", "interval", "expect_status"),
                             'expected a mapping like {url: "https://{stack.WebsiteURL}/health"}',
                             required=False)
    if items is None:
        return None
    before = len(ck.problems)
    url = ck.required("health", node, "url")
    if url is not None and not (isinstance(url.value, str) and re.match(r"https?://|\{stack\.", url.value)):
        ck.bad("health.url", url, "expected an http(s) URL, or one that starts with a stack output that is a "
                                  "URL itself: {stack.WebsiteURL}/health")
    consecutive = items.get("consecutive")
    if consecutive is not None and not (is_whole(consecutive.value) and 1 <= consecutive.value <= 100):
        ck.bad("health.consecutive", consecutive, "expected a whole number from 1 to 100")
    status = items.get("expect_status")
    if status is not None and not (is_whole(status.value) and 100 <= status.value <= 599):
        ck.bad("health.expect_status", status, "expected an HTTP status code")
    timeout = read_duration(ck, "health.timeout", items.get("timeout"))
    interval = read_duration(ck, "health.interval", items.get("interval"))
    if len(ck.problems) > before:
        return None
    return HealthSettings(url=url.value, consecutive=consecutive.value if consecutive is not None else 3,
                          timeout=timeout or timedelta(minutes=10), interval=interval or timedelta(seconds=10),
                          expect_status=status.value if status is not None else 200)


def read_dns(ck: Problems, top: Node) -> DnsSettings | None:
    node, items = ck.section(top, "dns", ("provider", "zone", "record", "ttl", "server", "port", "tsig"),
                             "expected a mapping like {provider: route53, zone: example.com., "
                             "record: www.example.com.}", required=False)
    if items is None:
        return None
    before = len(ck.problems)
    provider = ck.required("dns", node, "provider")
    if provider is not None and provider.value not in ("route53", "rfc2136"):
        ck.bad("dns.provider", provider, "expected route53 or rfc2136 (any DNS server or GSLB taking "
                                         "TSIG-signed dynamic updates)")
    names = {}
    for key in ("zone", "record"):
        child = ck.required("dns", node, key)
        if child is not None and not (isinstance(child.value, str) and _DNS_NAME_RE.fullmatch(child.value)):
            ck.bad(f"dns.{key}", child, "expected a fully qualified name ending with a dot, like example.com.")
        elif child is not None:
            names[key] = child.value
    if len(names) == 2 and not (names["record"] == names["zone"] or names["record"].endswith("." + names["zone"])):
        ck.bad("dns.record", items["record"], f"must be inside the zone {names['zone']}")
    ttl = items.get("ttl")
    if ttl is not None and not (is_whole(ttl.value) and 1 <= ttl.value <= 86400):
        ck.bad("dns.ttl", ttl, "expected seconds from 1 to 86400 (keep it low, e.g. 60, for fast failover)")
    port = items.get("port")
    if port is not None and not (is_whole(port.value) and 1 <= port.value <= 65535):
        ck.bad("dns.port", port, "expected a port number from 1 to 65535")
    server = items.get("server")
    tsig = None
    is_rfc = provider is not None and provider.value == "rfc2136"
    if is_rfc and server is None:
        ck.add("dns.server", node.line, "required key is missing: the name server that takes the updates")
    if items.get("tsig") is not None:
        titems = ck.mapping("dns.tsig", items["tsig"], ("name", "algorithm", "secret"),
                            "expected a mapping like {name: dr-key, algorithm: hmac-sha256, secret: {env: DR_TSIG}}")
        if titems is not None:
            tname = ck.required("dns.tsig", items["tsig"], "name")
            secret = read_secret(ck, "dns.tsig.secret", ck.required("dns.tsig", items["tsig"], "secret"))
            algo = titems.get("algorithm")
            if algo is not None and algo.value not in ("hmac-sha256", "hmac-sha512", "hmac-sha384", "hmac-sha224",
                                                       "hmac-sha1", "hmac-md5"):
                ck.bad("dns.tsig.algorithm", algo, "expected hmac-sha256 (or another HMAC TSIG algorithm)")
            if tname is not None and secret is not None:
                tsig = TsigSettings(name=str(tname.value), secret=secret,
                                    algorithm=algo.value if algo is not None else "hmac-sha256")
    elif is_rfc:
        ck.add("dns.tsig", node.line, "required key is missing: dynamic updates must be signed "
                                      "({name, algorithm, secret: {env: NAME}})")
    if len(ck.problems) > before:
        return None
    return DnsSettings(provider=provider.value, zone=names["zone"], record=names["record"],
                       ttl=ttl.value if ttl is not None else 60, server=server.value if server is not None else None,
                       port=port.value if port is not None else 53, tsig=tsig)
