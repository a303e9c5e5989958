"""stack.launch: relaunch the company's CloudFormation stack in the target region, safely.

Ownership rules (ownership.py), whatever `name` the step is given:

* **A drill only creates.** It refuses the production stack's name outright, and any stack that
  exists and was not created by this drill (its tags must say `dr:run=<this run>`,
  `dr:drill=true`): a drill never updates, tags or later deletes a stack it did not make.
* **A failover or failback adopts with care.** A stack that exists and was not made by this run
  (the production stack, a pilot-light copy) is updated in place only if something dr sets
  differs; its tags are kept and the parameters dr.yaml does not set keep their values
  (stack_cloudformation.py). A stack made by another dr run that did not finish is refused: resume that run.
* What this run creates is written to the run's ledger before CreateStack, tagged with the run,
  and torn down (drills) with everything it kept (teardown_leftovers.delete_stack).

Template parameters: stack.parameters, overlaid by stack.dr_parameters (not when the target is
the primary region: a failback), the restored snapshot (into stack.snapshot_parameter), then this
step's `parameters`. Values given by reference in dr.yaml ({env}, {secretsmanager}, {ssm}) are
read at run time in the target region and never written to the journal, a plan or a log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dr.config import Config, Secret
from dr.errors import ConfigError, OperationFailed
from dr.runbook.steps import ownership, teardown_leftovers
from dr.runbook.steps import stack_cloudformation as cfn
from dr.runbook.steps.base import DYNAMIC_OUTPUTS, Param, StepContext, StepType, is_reference, target_region
from dr.secret_refs import resolve_parameters


class StackLaunch(StepType):
    name = "stack.launch"
    description = ("Launches the configured CloudFormation stack in the target region: creates it, "
                   "recreates one this run made after ROLLBACK_COMPLETE, or updates it when what dr sets "
                   "differs (keeping the tags of a stack it did not make, and the values of parameters "
                   "dr.yaml does not set); waits, and outputs the stack's outputs (plus stack_id and "
                   "created). In a drill it only ever creates a new stack. Parameters: stack.parameters, "
                   "overlaid by stack.dr_parameters (not in the primary region: a failback), the snapshot "
                   "(into stack.snapshot_parameter) and this step's `parameters`.")
    params = (
        Param("parameters", "dict", default=None, help="template parameters overlaid last, e.g. "
                                                       "{DBHost: '${steps.db.endpoint}'}"),
        Param("snapshot", "str", help="a snapshot id for stack.snapshot_parameter (${steps.db.snapshot_id})"),
        Param("name", "str", help="stack name (default: stack.name, drill-suffixed in drills)"),
        Param("template", "str", help="template file (default: stack.template)"),
        Param("capabilities", "list", default=None, help="default: stack.capabilities"),
        Param("role_arn", "str", help="a CloudFormation service role that creates the resources"),
    )
    outputs = ("stack_id", "stack_name", "created", "outputs", DYNAMIC_OUTPUTS)
    iam_actions = (
        "cloudformation:CreateStack", "cloudformation:UpdateStack", "cloudformation:DeleteStack",
        "cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents",
        "cloudformation:GetTemplate", "cloudformation:ListStackResources", "cloudformation:TagResource",
        "iam:PassRole", "secretsmanager:GetSecretValue", "ssm:GetParameter", "kms:Decrypt",
    )
    example = """\
- id: stack
  type: stack.launch
  needs: [db]
  with:
    snapshot: ${steps.db.snapshot_id}
    parameters:
      DBHost: ${steps.db.endpoint}
  timeout: 30m
"""

    def output_names(self, params: Mapping[str, Any], config: Config) -> tuple[str, ...]:
        """stack_id, stack_name, created, outputs (all of them as one mapping) and each of the
        template's Outputs (`${steps.<id>.WebsiteURL}`); any name while the template cannot be read."""
        try:
            return ("stack_id", "stack_name", "created", "outputs") + self._template(params, config).outputs
        except ConfigError:
            return self.outputs

    def _template(self, params: Mapping[str, Any], config: Config) -> cfn.Template:
        path = params.get("template")
        if path is None:
            if config.stack is None:
                raise ConfigError("stack.launch needs the stack section of dr.yaml (name, template), "
                                  "or the `name` and `template` parameters")
            path = config.stack.template
        return cfn.load_template(path)

    def validate(self, params: Mapping[str, Any], config: Config) -> list[str]:
        if config.stack is None and not params.get("name"):
            return ["name: required when dr.yaml has no stack section"]
        try:
            template = self._template(params, config)
        except ConfigError as exc:
            return [exc.message]
        overlay = params.get("parameters") or {}
        if not isinstance(overlay, Mapping):
            return [] if is_reference(overlay) else ["parameters: expected a mapping of template parameters"]
        keys = set(config.stack.parameters_for_dr() if config.stack else {}) | set(overlay)
        snapshot_parameter = config.stack.snapshot_parameter if config.stack is not None else None
        if params.get("snapshot") and snapshot_parameter:
            keys.add(snapshot_parameter)
        allowed = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND")
        bad_caps = [c for c in params.get("capabilities") or () if c not in allowed]
        problems = cfn.parameter_problems(template, keys)
        if params.get("snapshot"):  # a restored database is handed over: the stack must use it
            unused = cfn.restored_data_problem(template, snapshot_parameter)
            if unused:
                problems.append(f"snapshot: {unused}")
        if bad_caps:
            problems.append(f"capabilities: {', '.join(map(str, bad_caps))} not one of {', '.join(allowed)}")
        return problems

    def values(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, str | Secret]:
        """The template parameters dr sets, references unresolved (safe to show)."""
        config, stack = ctx.config, ctx.config.stack
        in_primary = target_region(ctx) == config.regions.primary
        values: dict[str, str | Secret] = {} if stack is None else \
            dict(stack.parameters) if in_primary else stack.parameters_for_dr()
        snapshot = params.get("snapshot")
        if snapshot and stack is not None and stack.snapshot_parameter:
            values[stack.snapshot_parameter] = snapshot
        elif snapshot:  # validate() refused this for a template with a database of its own
            ctx.log("stack.snapshot_parameter is not set: the template has no database of its own and must "
                    "be given the restored one through a parameter (e.g. DBHost: ${steps.db.endpoint})")
        for key, value in (params.get("parameters") or {}).items():
            values[key] = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        return values

    def request(self, params: Mapping[str, Any], ctx: StepContext, *, resolve: bool = True) -> cfn.LaunchRequest:
        stack, region = ctx.config.stack, target_region(ctx)
        template = self._template(params, ctx.config)
        values = self.values(params, ctx)
        secret_keys = frozenset(k for k, v in values.items() if isinstance(v, Secret))
        parameters = resolve_parameters(values, ctx.session, region) if resolve else \
            {k: str(v) for k, v in values.items()}
        caps = params.get("capabilities")
        return cfn.LaunchRequest(
            name=params.get("name") or ctx.name(stack.name),
            template=template, parameters=parameters,
            capabilities=tuple(caps if caps is not None else (stack.capabilities if stack else ())),
            tags={**ownership.run_tags(ctx), "dr:managed": "true"}, role_arn=params.get("role_arn"),
            secret_keys=secret_keys)

    def _outputs(self, stack: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        outs = cfn.outputs_of(stack)
        created = ownership.tags_say_ours(cfn.tags_of(stack), ctx) is None
        return {**outs, "stack_id": stack["StackId"], "stack_name": stack["StackName"], "created": created,
                "outputs": outs}

    def _guard(self, name: str, existing: Mapping[str, Any] | None, ctx: StepContext, region: str) -> bool:
        """Refuse what this run must not touch; True when the stack is (or will be) this run's."""
        production = ctx.config.stack.name if ctx.config.stack is not None else None
        if ctx.drill and name == production:
            raise ConfigError(f"this is a drill: it must not launch, update or delete the production stack "
                              f"{production}; nothing was changed",
                              hint=f"leave `name` out (the drill uses {ctx.name(production)})")
        if existing is None:
            return True
        why = ownership.tags_say_ours(cfn.tags_of(existing), ctx)
        if why is None:
            return True
        if ctx.drill:
            raise ConfigError(f"this is a drill: stack {name} already exists in {region} and was not created "
                              f"by this drill ({why}); a drill never updates or deletes what it did not make, "
                              "nothing was changed", hint="leave `name` out, or name a stack that does not exist")
        made_by = cfn.tags_of(existing).get(ownership.TAG_RUN)
        if made_by and ownership.run_summary(ctx, made_by).get("status") not in (None, *ownership.FINISHED):
            message, hint = ownership.made_elsewhere(ctx, f"stack {name}", region, cfn.tags_of(existing))
            raise OperationFailed(message, hint=hint)
        ctx.log(f"stack {name} exists in {region} and was not made by this run ({why}): it is updated in "
                "place only if what dr sets differs; its tags and other parameters are kept")
        return False

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        req, region = self.request(params, ctx), target_region(ctx)
        client = ctx.session.client("cloudformation", region)
        existing = cfn.describe(client, req.name, region)
        owned = self._guard(req.name, existing, ctx, region)
        if owned:
            ctx.created("cloudformation-stack", req.name, region)
        stack = cfn.launch(ctx, client, req, region, owned=owned)
        if owned:
            ctx.record_created({"kind": "cloudformation-stack", "id": req.name, "region": region,
                                "step": ctx.step_id, "world_id": stack["StackId"]})
        ctx.log(f"stack {req.name} is {stack['StackStatus']} in {region}")
        return self._outputs(stack, ctx)

    def check(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any] | None:
        req, region = self.request(params, ctx, resolve=False), target_region(ctx)
        stack = cfn.describe(ctx.session.client("cloudformation", region), req.name, region)
        if stack is None or stack["StackStatus"] not in cfn.COMPLETE \
                or ownership.tags_say_ours(cfn.tags_of(stack), ctx) is not None:
            return None
        return self._outputs(stack, ctx)

    def teardown(self, params: Mapping[str, Any], outputs: Mapping[str, Any], ctx: StepContext) -> None:
        """Drills: delete the stack this run created, then what it kept (teardown_leftovers.delete_stack).
        A stack the ledger and the world do not both prove this run's is refused, loudly."""
        region = target_region(ctx)
        name = (outputs or {}).get("stack_name") or self.request(params, ctx, resolve=False).name
        client = ctx.session.client("cloudformation", region)
        stack = cfn.describe(client, name, region)
        if stack is None:
            return
        why = ownership.owned(ctx, "cloudformation-stack", name, region, cfn.tags_of(stack), stack["StackId"])
        if why:
            raise OperationFailed(f"not deleting stack {name} in {region}: {why}",
                                  hint="it was left exactly as it is; if it is a drill's leftover, delete it "
                                       "by hand")
        ctx.log(f"deleting stack {name} in {region}")
        try:
            policies = self._template(params, ctx.config).deletion_policies()
        except ConfigError:
            policies = None
        teardown_leftovers.delete_stack(ctx, client, stack, region, policies)


STEP_TYPES = (StackLaunch,)
