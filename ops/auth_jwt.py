"""Operator-mode credentials for `ringloop auth init --jwt`: one user JWT per ops.auth role.

An operator signs the ringloop account (JetStream enabled) and a system account; the account
signs one user per role whose JWT carries that role's permissions, written with the user's
seed as `<role>.creds` (what `--creds` and nats-py's user_credentials read). The server
config trusts the operator and preloads both accounts (a MEMORY resolver), so the same block
serves the embedded server and every node of a static cluster.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import nkeys

UNLIMITED = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
             "wildcards": True, "conn": -1, "leaf": -1}  # fmt: skip
MAX_CONTROL_LINE = 64 * 1024  # the server's default (4 KB) is shorter than a role's JWT
JETSTREAM_UNLIMITED = {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}


def keypair(seed: bytes) -> Any:
    return nkeys.from_seed(bytearray(seed))


def public(seed: bytes) -> str:
    return str(keypair(seed).public_key.decode())


def new_seed(prefix: int) -> bytes:
    return bytes(nkeys.encode_seed(os.urandom(32), prefix))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def encode_jwt(issuer_seed: bytes, subject: str, name: str, claims: dict[str, Any]) -> str:
    """A NATS v2 JWT: claims signed with the issuer's ed25519 nkey."""
    body: dict[str, Any] = {
        "iat": int(time.time()),
        "iss": public(issuer_seed),
        "name": name,
        "sub": subject,
        "nats": {**claims, "version": 2},
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()
    body["jti"] = base64.b32encode(digest).decode().rstrip("=")  # a unique id for the claims
    header = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    payload = _b64(json.dumps(body).encode())
    signature = keypair(issuer_seed).sign(f"{header}.{payload}".encode())
    return f"{header}.{payload}.{_b64(signature)}"


def user_jwt(account_seed: bytes, user_seed: bytes, role: str, permissions: Any) -> str:
    publish: dict[str, list[str]] = {"allow": list(permissions.publish)}
    if permissions.publish_deny:
        publish["deny"] = list(permissions.publish_deny)
    claims = {"type": "user", "pub": publish, "sub": {"allow": list(permissions.subscribe)},
              "subs": -1, "data": -1, "payload": -1}  # fmt: skip
    return encode_jwt(account_seed, public(user_seed), role, claims)


def creds_text(jwt: str, seed: bytes) -> str:
    return (
        f"-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{seed.decode()}\n------END USER NKEY SEED------\n"
    )


def server_block(operator_seed: bytes, account_seed: bytes, system_seed: bytes) -> str:
    """Trust the operator; preload the ringloop account (JetStream) and the system account."""
    account = encode_jwt(
        operator_seed, public(account_seed), "ringloop",
        {"type": "account", "limits": {**UNLIMITED, **JETSTREAM_UNLIMITED}},
    )  # fmt: skip
    system = encode_jwt(
        operator_seed, public(system_seed), "SYS", {"type": "account", "limits": UNLIMITED}
    )
    operator = encode_jwt(operator_seed, public(operator_seed), "ringloop", {"type": "operator"})
    # A client's CONNECT carries its user JWT (a role's permissions: up to ~20 KB here).
    return (
        f"max_control_line: {MAX_CONTROL_LINE}\n"
        f'operator: "{operator}"\nsystem_account: "{public(system_seed)}"\nresolver: MEMORY\n'
        f'resolver_preload: {{\n  {public(account_seed)}: "{account}"\n'
        f'  {public(system_seed)}: "{system}"\n}}\n'
    )


def write_private(path: Path, text: str) -> None:
    """Write a secret with mode 0600 (replacing what was there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
