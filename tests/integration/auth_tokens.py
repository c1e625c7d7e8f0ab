"""Keys, JWTs and shared checks for the auth tests (Debian's python3-jwt, python3-cryptography).

Keys are generated fresh per test run (KeySet writes its PEM and JWKS files into a temporary
directory). `token()` signs with PyJWT; `forge()` builds tokens PyJWT refuses to make (alg none,
an HMAC keyed with a public-key PEM, arbitrary headers), byte by byte. AuthTestCase adds to
RelayTestCase what every auth test checks: a refusal's status and JSON reason, an accepted
handshake, and that no token reached the relay's log.
"""

import atexit
import base64
import datetime
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
import urllib.parse

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from relay_harness import RelayTestCase, request, series_key


API_KEY = "auth-test-api-key"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_b64(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def now():
    return int(time.time())


def claims(sub="alice", ttl=300, **extra):
    """The usual claims: sub, iat, exp = now + ttl (ttl None: no exp), then `extra`."""
    out = {"sub": sub, "iat": now()}
    if ttl is not None:
        out["exp"] = now() + ttl
    out.update(extra)
    return out


def forge(header, payload, sign=None):
    """header.payload.signature with sign(signing_input bytes) -> signature bytes (None: empty)."""
    signing_input = f"{_json_b64(header)}.{_json_b64(payload)}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64url(signature)}"


def hmac_sha256(key):
    return lambda data: hmac.new(key, data, hashlib.sha256).digest()


def signature_of(token):
    return token.rsplit(".", 1)[-1]


def _public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _uint_b64(n, size=None):
    size = size or (n.bit_length() + 7) // 8
    return b64url(n.to_bytes(size, "big"))


def jwk(key, kid=None, alg=None, use="sig"):
    """The public JWK of a private key object, or an "oct" JWK for a bytes/str secret."""
    if isinstance(key, (bytes, str)):
        raw = key.encode() if isinstance(key, str) else key
        out = {"kty": "oct", "k": b64url(raw)}
    elif isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        out = {"kty": "RSA", "n": _uint_b64(numbers.n), "e": _uint_b64(numbers.e)}
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = key.public_key().public_numbers()
        crv, size = {"secp256r1": ("P-256", 32), "secp384r1": ("P-384", 48)}[key.curve.name]
        out = {"kty": "EC", "crv": crv, "x": _uint_b64(numbers.x, size),
               "y": _uint_b64(numbers.y, size)}
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
        out = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    else:
        raise TypeError(f"no JWK for {type(key).__name__}")
    if kid is not None:
        out["kid"] = kid
    if alg is not None:
        out["alg"] = alg
    if use is not None:
        out["use"] = use
    return out


def new_rsa_key(bits=2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def write_atomically(path, data):
    """Replaces `path` in one rename, so a concurrent reader sees the old or the new content."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def write_jwks(path, jwks):
    write_atomically(path, json.dumps({"keys": list(jwks)}, indent=1))


def self_signed_certificate_pem(key, name="wsrelay-test"):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.datetime.utcnow() - datetime.timedelta(days=1)
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


class KeySet:
    """One of each key type, generated now, plus a temporary directory for files about them.

    secret: the HMAC secret (str); rsa, rsa_cert (RSA 2048), ec256 (P-256), ec384 (P-384),
    ed25519. Call cleanup() (or use as a context manager) to delete the directory.
    """

    ALGORITHM_KEY = {"HS256": "secret", "HS384": "secret", "HS512": "secret",
                     "RS256": "rsa", "RS384": "rsa", "RS512": "rsa",
                     "ES256": "ec256", "ES384": "ec384", "EdDSA": "ed25519"}

    def __init__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="wsrelay-auth-")
        self.dir = self._tmp.name
        self.secret = secrets.token_hex(32)
        self.rsa = new_rsa_key()
        self.rsa_cert = new_rsa_key()
        self.ec256 = ec.generate_private_key(ec.SECP256R1())
        self.ec384 = ec.generate_private_key(ec.SECP384R1())
        self.ed25519 = ed25519.Ed25519PrivateKey.generate()

    def cleanup(self):
        self._tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def rsa_public_pem(self):
        return _public_pem(self.rsa)

    def write_pem(self, name, *keys, certificates=()):
        """A PEM file with the PUBLIC KEY blocks of `keys` and self-signed CERTIFICATE blocks for
        `certificates`; returns its path."""
        blocks = [_public_pem(k) for k in keys]
        blocks += [self_signed_certificate_pem(k) for k in certificates]
        path = self.path(name)
        write_atomically(path, b"".join(blocks))
        return path

    def write_jwks(self, name, jwks):
        path = self.path(name)
        write_jwks(path, jwks)
        return path

    def token(self, alg="HS256", payload=None, key=None, kid=None, headers=None):
        """A token signed by PyJWT with the key this set holds for `alg` (or `key`)."""
        if key is None:
            key = getattr(self, self.ALGORITHM_KEY[alg])
        extra = dict(headers or {})
        if kid is not None:
            extra["kid"] = kid
        return jwt.encode(payload if payload is not None else claims(), key, algorithm=alg,
                          headers=extra or None)


_SHARED = []


def shared_keys():
    """The KeySet of this test process: generated on first use, deleted at exit."""
    if not _SHARED:
        _SHARED.append(KeySet())
        atexit.register(_SHARED[0].cleanup)
    return _SHARED[0]


def auth_config(extra=None, secret=True, pem=True):
    """auth on with the shared secret and a PEM of every public key type (plus a certificate),
    the HTTP API on, and debug logging so that a token written to the log would show."""
    keys = shared_keys()
    config = {"auth.enabled": True, "api.key": API_KEY, "log.level": "debug"}
    if secret:
        config["auth.jwt.secret"] = keys.secret
    if pem:
        config["auth.jwt.public_key_file"] = keys.write_pem(
            "public.pem", keys.rsa, keys.ec256, keys.ec384, keys.ed25519,
            certificates=[keys.rsa_cert])
    config.update(extra or {})
    return config


def query_path(token, path="/ws"):
    return f"{path}?token={urllib.parse.quote(token, safe='')}"


def upgrade_request(token, via):
    """(path, headers) that carry `token` in place `via` (None: no token at all)."""
    if token is None:
        return "/ws", {}
    if via == "bearer":
        return "/ws", {"Authorization": f"Bearer {token}"}
    if via == "subprotocol":
        return "/ws", {"Sec-WebSocket-Protocol": f"wsrelay.v1, wsrelay.bearer.{token}"}
    if via == "query":
        return query_path(token), {}
    raise ValueError(via)


def connect(relay, token, via="bearer", **kwargs):
    """websockets' client with `token` in place `via`; use as `async with`."""
    if via == "bearer":
        return relay.ws_connect(extra_headers={"Authorization": f"Bearer {token}"}, **kwargs)
    if via == "subprotocol":
        return relay.ws_connect(subprotocols=["wsrelay.v1", f"wsrelay.bearer.{token}"], **kwargs)
    if via == "query":
        return relay.ws_connect(query_path(token), **kwargs)
    raise ValueError(via)


def count(series, name, **labels):
    """A counter's value; 0 while the relay has not exported the series yet."""
    return series.get(series_key(name, **labels), 0.0)


class AuthTestCase(RelayTestCase):
    def setUp(self):
        super().setUp()
        self.tokens = []  # every token a test sent: none may appear in a relay's log

    def tok(self, alg="HS256", payload=None, **kwargs):
        token = shared_keys().token(alg, payload, **kwargs)
        self.tokens.append(token)
        return token

    def remember(self, token):
        self.tokens.append(token)
        return token

    async def assertRefused(self, relay, reason, token=None, via="bearer", status=401,
                            path=None, headers=None):
        if token is not None:
            self.remember(token)
        p, h = upgrade_request(token, via)
        h.update(headers or {})
        got, head, body = await relay.ahttp_upgrade(path or p, h)
        what = f"{reason!r} via {via}: {got} {head} {body[:300]!r}"
        self.assertEqual(status, got, what)
        self.assertIn("application/json", head.get("content-type", ""), what)
        if status == 401:
            self.assertEqual('Bearer error="invalid_token"', head.get("www-authenticate"), what)
            self.assertEqual({"error": "unauthorized", "reason": reason}, json.loads(body), what)
        else:
            self.assertEqual(reason, json.loads(body).get("reason"), what)

    async def assertAccepted(self, relay, token, via="bearer"):
        self.remember(token)
        async with connect(relay, token, via) as ws:
            self.assertEqual({"op": "pong", "id": 1}, await request(ws, {"op": "ping", "id": 1}))

    async def api_publish(self, relay, channel, data):
        status, _, body = await relay.ahttp_post("/api/publish", {"channel": channel, "data": data},
                                                 headers={"X-API-Key": API_KEY})
        self.assertEqual(200, status, body)

    def assertNoTokenLogged(self, relay):
        log = relay.log()
        for token in self.tokens:
            if len(token) >= 20:
                self.assertNotIn(token, log)
            sig = signature_of(token)
            if len(sig) >= 16:
                self.assertNotIn(sig, log, f"the signature of {token[:30]}... is in the log")
