"""The small adapters: SNS (alerts, runbook notify), Secrets Manager and SSM (secret references)."""

from __future__ import annotations

from typing import Any

from dr.aws.errors import aws_call


class Sns:
    """One region's SNS."""

    def __init__(self, client: Any, region: str):
        self.client, self.region = client, region

    def publish(self, topic_arn: str, subject: str, message: str) -> str | None:
        """Publish; the message id."""
        reply = aws_call(self.client.publish, TopicArn=topic_arn, Subject=subject, Message=message,
                         action="publishing to", resource=topic_arn, region=self.region)
        return reply.get("MessageId")


class Secrets:
    """One region's Secrets Manager and SSM Parameter Store, read-only."""

    def __init__(self, secretsmanager: Any, ssm: Any, region: str):
        self.secretsmanager, self.ssm, self.region = secretsmanager, ssm, region

    def secret_string(self, secret_id: str) -> str | None:
        """The secret's SecretString; None when it holds binary data (SecretBinary)."""
        return aws_call(self.secretsmanager.get_secret_value, SecretId=secret_id, action="reading secret",
                        resource=secret_id, region=self.region).get("SecretString")

    def parameter(self, name: str) -> str:
        """The parameter's value, decrypted (SecureString)."""
        return aws_call(self.ssm.get_parameter, Name=name, WithDecryption=True,
                        action="reading SSM parameter", resource=name, region=self.region)["Parameter"]["Value"]
