"""A throwaway certificate authority so simple-salesforce's ``https://`` URLs reach loopback."""

from __future__ import annotations

import pathlib

import trustme


def make_tls(directory: pathlib.Path) -> tuple[str, str, str]:
    """Write ``ca.pem``, ``cert.pem`` and ``key.pem`` for ``localhost`` and ``127.0.0.1``.

    Returns ``(ca_path, cert_path, key_path)``: clients trust ``ca_path``; the server uses the
    other two.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_path, cert_path, key_path = (directory / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca.cert_pem.write_to_path(str(ca_path))
    cert_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_path))
    return str(ca_path), str(cert_path), str(key_path)
