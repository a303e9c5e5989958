"""Route 53 (global; its API lives in us-east-1): hosted zones, record sets, changes, health checks.

Record sets go in and out as Route 53's own ResourceRecordSet dicts: dr/dns/route53.py turns
them into RecordSet and back (that mapping is DNS logic, not I/O).
"""

from __future__ import annotations

from typing import Any

from dr.aws.errors import aws_call

API_REGION = "us-east-1"


class Route53:
    def __init__(self, client: Any):
        self.client = client

    def _call(self, method: str, resource: str, **kwargs):
        return aws_call(getattr(self.client, method), action=f"route53 {method}", resource=resource,
                        region="global", **kwargs)

    def zones_named(self, zone: str) -> list[tuple[str, str]]:
        """(Id, Name) of the hosted zones listed from `zone` on (the caller matches the names)."""
        reply = self._call("list_hosted_zones_by_name", zone, DNSName=zone, MaxItems="10")
        return [(z["Id"], z["Name"]) for z in reply["HostedZones"]]

    def record_sets(self, zone_id: str, name: str, start: dict[str, str] | None = None,
                    max_items: str | None = None) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """One page of record sets from `name` (or from `start`, the previous page's next): the
        sets and the next page's start (None on the last page)."""
        kwargs: dict[str, Any] = dict(start or {"StartRecordName": name})
        if max_items is not None:
            kwargs = {"MaxItems": max_items}
        reply = self._call("list_resource_record_sets", name, HostedZoneId=zone_id, **kwargs)
        if not reply.get("IsTruncated") or max_items is not None:
            return reply["ResourceRecordSets"], None
        following = {"StartRecordName": reply["NextRecordName"], "StartRecordType": reply["NextRecordType"]}
        if "NextRecordIdentifier" in reply:
            following["StartRecordIdentifier"] = reply["NextRecordIdentifier"]
        return reply["ResourceRecordSets"], following

    def change(self, zone_id: str, name: str, batch: dict[str, Any]) -> str:
        """One ChangeResourceRecordSets batch (atomic); the change id."""
        return self._call("change_resource_record_sets", name, HostedZoneId=zone_id,
                          ChangeBatch=batch)["ChangeInfo"]["Id"]

    def change_status(self, change_id: str) -> str:
        """PENDING | INSYNC."""
        return self._call("get_change", change_id, Id=change_id)["ChangeInfo"]["Status"]

    def find_health_check(self, reference: str) -> str | None:
        """The id of the health check made with CallerReference `reference`, if any."""
        kwargs: dict[str, Any] = {}
        while True:
            reply = self._call("list_health_checks", reference, **kwargs)
            for check in reply["HealthChecks"]:
                if check.get("CallerReference") == reference:
                    return check["Id"]
            if not reply.get("IsTruncated"):
                return None
            kwargs = {"Marker": reply["NextMarker"]}

    def create_health_check(self, resource: str, reference: str, config: dict[str, Any]) -> str:
        return self._call("create_health_check", resource, CallerReference=reference,
                          HealthCheckConfig=config)["HealthCheck"]["Id"]

    def delete_health_check(self, check_id: str) -> None:
        """Delete; gone already is success."""
        try:
            self._call("delete_health_check", check_id, HealthCheckId=check_id)
        except Exception as exc:  # noqa: BLE001 - gone already is success
            if "NoSuchHealthCheck" not in str(exc):
                raise

    def health_check_reports(self, check_id: str) -> list[str]:
        """The status report of each Route 53 checker, as it words it ("Success: ...", "Failure: ...")."""
        reply = self._call("get_health_check_status", check_id, HealthCheckId=check_id)
        return [o.get("StatusReport", {}).get("Status", "") for o in reply.get("HealthCheckObservations", ())]

    def all_record_sets(self, zone_id: str, zone: str) -> list[dict[str, Any]]:
        """Every record set of the zone, through all pages."""
        def fetch() -> list[dict[str, Any]]:
            pages = self.client.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id)
            return [rr for page in pages for rr in page.get("ResourceRecordSets", [])]

        return aws_call(fetch, action="listing records of", resource=zone, region="global")

    def delete_record(self, zone_id: str, rrset: dict[str, Any], comment: str) -> None:
        """Delete exactly this record set; one that is gone already is not an error."""
        try:
            aws_call(self.client.change_resource_record_sets, HostedZoneId=zone_id,
                     ChangeBatch={"Comment": comment, "Changes": [{"Action": "DELETE", "ResourceRecordSet": rrset}]},
                     action="deleting record", resource=rrset["Name"], region="global")
        except Exception as exc:  # noqa: BLE001 - narrowed just below
            if "not found" not in str(exc):
                raise

    def health_checks(self) -> list[dict[str, Any]]:
        """Every health check (Id, CallerReference, HealthCheckConfig)."""
        def fetch() -> list[dict[str, Any]]:
            pages = self.client.get_paginator("list_health_checks").paginate()
            return [c for page in pages for c in page.get("HealthChecks", [])]

        return aws_call(fetch, action="listing health checks", resource="(all)", region="global")

    def health_check_tags(self, ids: list[str]) -> dict[str, dict[str, str]]:
        """id -> tags, ten at a time (the API's limit)."""
        tags: dict[str, dict[str, str]] = {}
        for start in range(0, len(ids), 10):
            batch = aws_call(self.client.list_tags_for_resources, ResourceType="healthcheck",
                             ResourceIds=ids[start:start + 10], action="reading tags of",
                             resource="health checks", region="global")
            for entry in batch.get("ResourceTagSets", []):
                tags[entry["ResourceId"]] = {t["Key"]: t["Value"] for t in entry.get("Tags") or []}
        return tags
