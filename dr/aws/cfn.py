"""CloudFormation: describe / create / update / delete stacks, their events, templates, resources.

Stacks come out as `Stack`; template parsing and the launch logic stay with the runbook's stack
steps (dr/runbook/steps/), which decide; this module only asks and tells.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dr.aws.errors import aws_call
from dr.errors import AwsError


@dataclass(frozen=True)
class Stack:
    """A stack as DescribeStacks shows it (a deleted stack is None, never a Stack)."""

    id: str
    name: str
    status: str
    status_reason: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)  # key -> value (NoEcho ones as ****)
    outputs: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    created: datetime | None = None

    @property
    def in_progress(self) -> bool:
        return self.status.endswith("_IN_PROGRESS")


@dataclass(frozen=True)
class StackEvent:
    timestamp: datetime
    logical_id: str
    resource_type: str
    status: str
    reason: str


def to_stack(item: dict[str, Any]) -> Stack:
    return Stack(
        id=item["StackId"], name=item["StackName"], status=item["StackStatus"],
        status_reason=item.get("StackStatusReason"),
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in item.get("Parameters") or []},
        outputs={o["OutputKey"]: o.get("OutputValue", "") for o in item.get("Outputs") or []},
        tags={t["Key"]: t["Value"] for t in item.get("Tags") or []},
        created=item.get("CreationTime"))


class Cfn:
    """One region's CloudFormation."""

    def __init__(self, client: Any, region: str):
        self.client, self.region = client, region

    def describe(self, name: str) -> Stack | None:
        """The stack (by name or id), or None when it does not exist (or was deleted)."""
        try:
            stacks = aws_call(self.client.describe_stacks, StackName=name, action="describing stack",
                              resource=name, region=self.region)["Stacks"]
        except AwsError as exc:
            if exc.code == "ValidationError" and "does not exist" in str(exc):
                return None
            raise
        if not stacks or stacks[0]["StackStatus"] == "DELETE_COMPLETE":
            return None
        return to_stack(stacks[0])

    def list_stacks(self) -> list[Stack]:
        """Every stack that is not deleted."""
        def listing() -> list[dict[str, Any]]:
            pages = self.client.get_paginator("describe_stacks").paginate()
            return [s for page in pages for s in page["Stacks"]]

        return [to_stack(s) for s in aws_call(listing, action="listing stacks", resource="in the region",
                                              region=self.region)
                if s["StackStatus"] != "DELETE_COMPLETE"]

    def create(self, args: dict[str, Any]) -> str:
        """CreateStack with `args` (StackName, TemplateBody, Parameters, Tags, ...); the stack id."""
        return aws_call(self.client.create_stack, **args, action="creating stack",
                        resource=args["StackName"], region=self.region)["StackId"]

    def update(self, args: dict[str, Any]) -> bool:
        """UpdateStack; False when CloudFormation says there is nothing to update."""
        try:
            aws_call(self.client.update_stack, **args, action="updating stack", resource=args["StackName"],
                     region=self.region)
        except AwsError as exc:
            if "No updates are to be performed" in str(exc):
                return False
            raise
        return True

    def delete(self, stack_id: str) -> None:
        aws_call(self.client.delete_stack, StackName=stack_id, action="deleting stack", resource=stack_id,
                 region=self.region)

    def template_body(self, stack_id: str, name: str | None = None) -> str:
        """The stack's original template, as text."""
        body = aws_call(self.client.get_template, StackName=stack_id, TemplateStage="Original",
                        action="reading the template of stack", resource=name or stack_id,
                        region=self.region)["TemplateBody"]
        return body if isinstance(body, str) else json.dumps(body)  # boto3 decodes JSON templates

    def events(self, stack_id: str) -> list[StackEvent]:
        """Every event of the stack, oldest first."""
        def listing() -> list[dict[str, Any]]:
            pages = self.client.get_paginator("describe_stack_events").paginate(StackName=stack_id)
            return [e for page in pages for e in page["StackEvents"]]

        found = aws_call(listing, action="reading the events of stack", resource=stack_id, region=self.region)
        return sorted((StackEvent(e["Timestamp"], e.get("LogicalResourceId", ""), e.get("ResourceType", "?"),
                                  e.get("ResourceStatus", ""), e.get("ResourceStatusReason") or "")
                       for e in found), key=lambda e: e.timestamp)

    def validate(self, body: str, name: str) -> None:
        """ValidateTemplate: an AwsError says what CloudFormation finds wrong."""
        aws_call(self.client.validate_template, TemplateBody=body, action="validating template", resource=name,
                 region=self.region)

    def resources(self, stack_id: str) -> list[dict[str, Any]]:
        """The stack's resources (LogicalResourceId, ResourceType, PhysicalResourceId, ResourceStatus)."""
        def listing() -> list[dict[str, Any]]:
            paginator = self.client.get_paginator("list_stack_resources")
            return [r for page in paginator.paginate(StackName=stack_id)
                    for r in page.get("StackResourceSummaries", [])]

        return aws_call(listing, action="listing the resources of stack", resource=stack_id, region=self.region)
