"""The AWS regions this installation knows, from the partitions' endpoint data botocore ships.

Config validation uses it to refuse a misspelt region before any call (an unknown region would
otherwise surface as a parser error from the first request). Reading the data file does not
import boto3 or make a session, so `dr validate` stays fast.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def known_regions() -> dict[str, str]:
    """Every region botocore knows -> its partition (aws, aws-cn, aws-us-gov, ...)."""
    from botocore.loaders import create_loader

    data = create_loader().load_data("endpoints")
    return {region: p["partition"] for p in data["partitions"] for region in p.get("regions", {})}
