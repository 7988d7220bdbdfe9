"""A software WebAuthn authenticator for API tests (ES256, attestation "none"): it answers the
service's options as a browser with a passkey would, and can be told to lie (a lower sign count, no
user verification, another origin) to test the refusals."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    def __init__(self, rp_id: str = "localhost", origin: str = "http://localhost:8000") -> None:
        self.rp_id, self.origin = rp_id, origin
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.user_handle: bytes | None = None
        self.sign_count = 0

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def _client_data(self, kind: str, challenge: str, origin: str | None = None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin or self.origin,
                           "crossOrigin": False}).encode()

    def create(self, options: dict, *, user_verified: bool = True) -> dict:
        public_key = options["publicKey"]
        self.user_handle = unb64url(public_key["user"]["id"])
        flags = 0x01 | 0x40 | (0x04 if user_verified else 0)
        auth_data = (hashlib.sha256(public_key["rp"]["id"].encode()).digest() + bytes([flags])
                     + struct.pack(">I", self.sign_count) + bytes(16) + struct.pack(">H", len(self.credential_id))
                     + self.credential_id + self._cose_key())
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", public_key["challenge"])
        return {"id": b64url(self.credential_id), "rawId": b64url(self.credential_id), "type": "public-key",
                "clientExtensionResults": {},
                "response": {"clientDataJSON": b64url(client_data), "attestationObject": b64url(attestation),
                             "transports": ["internal"]}}

    def get(self, options: dict, *, sign_count: int | None = None, user_verified: bool = True,
            origin: str | None = None, user_handle: bytes | None = None) -> dict:
        public_key = options["publicKey"]
        if sign_count is None:
            self.sign_count += 1
            sign_count = self.sign_count
        flags = 0x01 | (0x04 if user_verified else 0)
        auth_data = (hashlib.sha256(public_key.get("rpId", self.rp_id).encode()).digest() + bytes([flags])
                     + struct.pack(">I", sign_count))
        client_data = self._client_data("webauthn.get", public_key["challenge"], origin)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {"id": b64url(self.credential_id), "rawId": b64url(self.credential_id), "type": "public-key",
                "clientExtensionResults": {},
                "response": {"clientDataJSON": b64url(client_data), "authenticatorData": b64url(auth_data),
                             "signature": b64url(signature),
                             "userHandle": b64url(user_handle or self.user_handle or b"")}}
