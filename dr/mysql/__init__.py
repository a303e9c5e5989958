"""The MySQL/MariaDB engine: consistent parallel dumps to a byte stream, restores from one.

    spec, db = parse_uri("mysql://backup@10.0.0.5:3306/app?tls=required")
    manifest = dump(spec, [db], out)                      # out: any binary writer
    result = restore(stream, spec, target_db="app_restore_1")
    problems = verify(spec, "app_restore_1", manifest.databases["app"].tables)

The stream format is documented in FORMAT.md. Nothing here reads dr.config.
"""

from dr.mysql.conn import ConnectionSpec, connect, parse_uri
from dr.mysql.dump import dump
from dr.mysql.errors import (
    DumpError,
    MysqlAuthError,
    MysqlError,
    MysqlTlsError,
    MysqlUnreachable,
    MysqlUriError,
    RestoreError,
    StreamFormatError,
    TargetNotEmpty,
    VerificationFailed,
)
from dr.mysql.manifest import BinlogPosition, DatabaseInfo, DumpManifest, TableInfo
from dr.mysql.restore import restore
from dr.mysql.restore_result import RestoreResult, TableResult
from dr.mysql.restore_verify import verify

__all__ = [
    "BinlogPosition", "ConnectionSpec", "DatabaseInfo", "DumpError", "DumpManifest",
    "MysqlAuthError", "MysqlError", "MysqlTlsError", "MysqlUnreachable", "MysqlUriError",
    "RestoreError", "RestoreResult", "StreamFormatError", "TableInfo", "TableResult",
    "TargetNotEmpty", "VerificationFailed", "connect", "dump", "parse_uri", "restore", "verify",
]
