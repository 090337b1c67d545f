"""A throwaway certificate authority so simple-salesforce's ``https://`` URLs reach loopback."""

from __future__ import annotations

import pathlib

import trustme


def make_tls(directory: pathlib.Path) -> tuple[str, str, str]:
    """Write ``ca.pem``, ``cert.pem`` and ``key.pem`` for ``localhost`` and ``127.0.0.1``.

    Returns ``(ca_path, cert_path, key_path)``: clients trust ``ca_path``; the server uses the
    other two. A CA already in ``directory`` (``ca.pem`` with ``ca-key.pem``) is reused, so a
    browser told to trust it once keeps trusting the next run's certificate.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, ca_key_path, cert_path, key_path = (
        directory / n for n in ("ca.pem", "ca-key.pem", "cert.pem", "key.pem")
    )
    if ca_path.is_file() and ca_key_path.is_file():
        ca = trustme.CA.from_pem(ca_path.read_bytes(), ca_key_path.read_bytes())
    else:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(ca_path))
        ca.private_key_pem.write_to_path(str(ca_key_path))
        ca_key_path.chmod(0o600)
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_path))
    return str(ca_path), str(cert_path), str(key_path)
