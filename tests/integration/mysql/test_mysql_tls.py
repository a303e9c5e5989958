"""TLS for real: a throwaway MariaDB with a certificate from a throwaway CA."""

from __future__ import annotations

import datetime
import io

import pytest

from dr.mysql import ConnectionSpec, MysqlTlsError, connect, dump
from tests.support.mariadb import mariadb, mariadb_server, start_or_skip  # noqa: F401

pytestmark = pytest.mark.integration


def _cert(subject: str, issuer_key, issuer_name, key, *, ca: bool, sans=()):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                                         subject)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_pki(folder):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    def pem_key(k):
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _cert("dr test CA", ca_key, None, ca_key, ca=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _cert("localhost", ca_key, ca.subject, key, ca=False,
                 sans=[x509.DNSName("localhost")])
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = _cert("another CA", other_key, None, other_key, ca=True)
    pem = serialization.Encoding.PEM
    files = {"ca.pem": ca.public_bytes(pem), "server.pem": cert.public_bytes(pem),
             "server-key.pem": pem_key(key), "other-ca.pem": other.public_bytes(pem)}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {name: str(folder / name) for name in files}


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    pytest.importorskip("cryptography")
    base = tmp_path_factory.mktemp("mariadb-tls")
    pki = _write_pki(base)
    server = start_or_skip(base / "srv", extra_args=(
        f"--ssl-ca={pki['ca.pem']}", f"--ssl-cert={pki['server.pem']}",
        f"--ssl-key={pki['server-key.pem']}"))
    yield server, pki
    server.stop()


def _cipher(spec) -> str:
    conn = connect(spec)
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        return cur.fetchone()[1]


def test_required_negotiates_tls(tls_server):
    server, _ = tls_server
    spec = ConnectionSpec(host="127.0.0.1", port=server.port, tls="required")
    assert _cipher(spec)
    assert _cipher(ConnectionSpec(host="127.0.0.1", port=server.port, tls="preferred"))
    assert _cipher(ConnectionSpec(host="127.0.0.1", port=server.port, tls="off")) == ""


def test_ca_verifies_the_server(tls_server):
    server, pki = tls_server
    good = ConnectionSpec(host="localhost", port=server.port, tls="required",
                          ca_file=pki["ca.pem"])
    assert _cipher(good)
    manifest = dump(good, ["mysql"], io.BytesIO(), threads=1, checksums=False)
    assert manifest.databases["mysql"].tables


def test_wrong_ca_fails(tls_server):
    server, pki = tls_server
    spec = ConnectionSpec(host="localhost", port=server.port, tls="required",
                          ca_file=pki["other-ca.pem"])
    with pytest.raises(MysqlTlsError, match="TLS with MySQL at localhost"):
        connect(spec)


def test_host_name_must_match(tls_server):
    server, pki = tls_server
    spec = ConnectionSpec(host="127.0.0.1", port=server.port, tls="required",
                          ca_file=pki["ca.pem"])  # the certificate names localhost only
    with pytest.raises(MysqlTlsError, match="127.0.0.1"):
        connect(spec)


def test_missing_ca_file_is_a_clear_error(tls_server):
    server, _ = tls_server
    spec = ConnectionSpec(host="127.0.0.1", port=server.port, tls="required",
                          ca_file="/nonexistent/ca.pem")
    with pytest.raises(MysqlTlsError, match="cannot read the CA file /nonexistent/ca.pem"):
        connect(spec)


def test_unix_socket(mariadb_server):
    spec = ConnectionSpec(host="localhost", unix_socket=mariadb_server.socket, tls="off")
    conn = connect(spec)
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
