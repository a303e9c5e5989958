"""dr: disaster recovery and cross-region replication for startups on AWS."""

__version__ = "0.1.0"
