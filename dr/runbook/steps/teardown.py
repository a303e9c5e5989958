"""teardown: end a drill by proving it left nothing billable (and removing what it left).

Finding and deleting what a drill left is in teardown_leftovers.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dr.config import Config
from dr.errors import DrError, OperationFailed
from dr.runbook.steps import teardown_leftovers as leftovers
from dr.runbook.steps.base import Param, StepContext, StepType, target_region


class Teardown(StepType):
    name = "teardown"
    description = (
        "Ends a drill and proves it cost nothing afterwards. It finds everything THIS drill made in "
        "the target region, by the run's ledger (what each step recorded before creating it, and the "
        "resources of its stacks), its dr:run tag or its drill-suffixed name (stacks, DB instances and "
        "clusters, what a template's DeletionPolicy kept, snapshots, drill DNS records, Route 53 health "
        "checks), deletes what the world confirms is the drill's and looks again: anything billable "
        "still there, or named by the ledger but not provably the drill's, fails it, by name. As the last step of a drill (at: now) it "
        "takes stock when it runs and sweeps in the drill's teardown phase, so `dr drill --keep` "
        "keeps everything; as a hook (at: end or failure) it sweeps when the run ends, after the "
        "other steps' teardowns. Production names carry no drill suffix and are never touched; "
        "outside a drill it does nothing.")
    params = (
        Param("at", "str", default="now", help="now (the last step of the drill), end or failure (a hook)"),
        Param("delete", "bool", default=True, help="delete what is found (false: only check)"),
        Param("dns", "bool", default=True, help="include Route 53 drill records and health checks"),
    )
    outputs = ("found", "left", "deleted")
    iam_actions = (
        "cloudformation:DescribeStacks", "cloudformation:DeleteStack", "cloudformation:DescribeStackEvents",
        "cloudformation:ListStackResources", "cloudformation:GetTemplate",
        "rds:DescribeDBInstances", "rds:DescribeDBClusters", "rds:DescribeDBSnapshots",
        "rds:DescribeDBClusterSnapshots", "rds:DeleteDBInstance", "rds:DeleteDBCluster",
        "rds:DeleteDBSnapshot", "rds:DeleteDBClusterSnapshot", "route53:ListHostedZonesByName",
        "route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets", "route53:ListHealthChecks",
        "route53:ListTagsForResources", "route53:DeleteHealthCheck",
    )
    example = """\
- id: cleanup
  type: teardown
  needs: [flip]          # last: takes stock now, sweeps in the drill's teardown phase
"""
    PHASES = ("now", "end", "failure")

    @classmethod
    def phase(cls, params: Mapping[str, Any]) -> str | None:
        at = params.get("at") or "now"
        return None if at == "now" else at

    def validate(self, params: Mapping[str, Any], config: Config) -> list[str]:
        at = params.get("at")
        if isinstance(at, str) and at not in self.PHASES:
            return [f"at: expected one of {', '.join(self.PHASES)}, got {at!r}"]
        return []

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        if not ctx.drill:
            ctx.log("teardown: this run is not a drill; nothing is torn down")
            return {"found": [], "left": [], "deleted": []}
        if (params.get("at") or "now") == "now":
            region, match = target_region(ctx), leftovers.DrillMatcher(ctx)
            found = leftovers.find(ctx, region, match, dns=params["dns"])
            ctx.log(f"teardown: drill {match.label} has {len(found)} resource(s) in {region}; they are "
                    "removed in the drill's teardown phase")
            return {"found": [f.to_dict() for f in found], "left": [], "deleted": []}
        return self.sweep(params, ctx)

    def teardown(self, params: Mapping[str, Any], outputs: Mapping[str, Any], ctx: StepContext) -> None:
        if ctx.drill:
            self.sweep(params, ctx)

    def sweep(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        """Find, delete (stacks first: they take their resources with them), look again."""
        region, match = target_region(ctx), leftovers.DrillMatcher(ctx)
        dns = params["dns"]
        found = initial = leftovers.find(ctx, region, match, dns=dns)
        deleted: list[dict[str, str]] = []
        errors: list[str] = []
        if params["delete"] and found:
            stacks = [f for f in found if f.kind == "cloudformation-stack"]
            self._delete(ctx, stacks, deleted, errors)
            if stacks:
                found = leftovers.find(ctx, region, match, dns=dns)
            self._delete(ctx, [f for f in found if f.kind != "cloudformation-stack"], deleted, errors)
            found = leftovers.find(ctx, region, match, dns=dns)
        if found:
            names = "; ".join(str(item) for item in found)
            why = f" (errors: {'; '.join(errors)})" if errors else ""
            raise OperationFailed(f"drill {match.label} left billable resources behind: {names}{why}",
                                  hint="delete them (or run the teardown again); they bill until gone")
        ctx.log(f"teardown: nothing of drill {match.label} is left in {region}")
        return {"found": [f.to_dict() for f in initial], "left": [], "deleted": deleted}

    @staticmethod
    def _delete(ctx: StepContext, items: list[leftovers.Leftover], deleted: list[dict[str, str]],
                errors: list[str]) -> None:
        for item in items:
            if item.refused or item.delete is None:
                errors.append(f"{item}: {item.refused or 'dr cannot delete this kind'}")
                continue
            try:
                ctx.log(f"teardown: deleting {item}")
                item.delete()
                deleted.append(item.to_dict())
            except DrError as exc:
                errors.append(f"{item}: {exc.message}")


STEP_TYPES = (Teardown,)
