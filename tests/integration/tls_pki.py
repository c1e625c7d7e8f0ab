"""The test PKI of tests/tls/make_certs.sh, written once per test process into a temporary
directory: ca.crt, server.crt/key (localhost, 127.0.0.1), client.crt/key, other-ca.crt."""

import atexit
import os
import subprocess
import tempfile
import unittest

SOURCE_DIR = os.environ.get("WSRELAY_SOURCE_DIR",
                            os.path.join(os.path.dirname(__file__), "..", ".."))

_dir = None


def pki_path(name):
    """The path of `name` in the test PKI, made on first use (skips without openssl)."""
    global _dir
    if _dir is None:
        if subprocess.run(["which", "openssl"], capture_output=True).returncode != 0:
            raise unittest.SkipTest("openssl is not installed")
        tmp = tempfile.TemporaryDirectory(prefix="wsrelay-pki-")
        atexit.register(tmp.cleanup)
        subprocess.run(["bash", os.path.join(SOURCE_DIR, "tests/tls/make_certs.sh"), tmp.name],
                       check=True, capture_output=True, timeout=60)
        _dir = tmp
    return os.path.join(_dir.name, name)


def redis_tls_args(tls_port, auth_clients="no"):
    """redis-server arguments for a TLS port signed by the test CA (the plain port stays)."""
    return ["--tls-port", str(tls_port), "--tls-cert-file", pki_path("server.crt"),
            "--tls-key-file", pki_path("server.key"), "--tls-ca-cert-file", pki_path("ca.crt"),
            "--tls-auth-clients", auth_clients]
