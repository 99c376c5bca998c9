"""A tiny HTTP client for gateway tests (stdlib, no proxies: the gateway is on loopback)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bridge.discovery import Discovery, read_discovery


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_code(self) -> str:
        return self.json["error"]["code"]


class GatewayHTTP:
    def __init__(self, url: str, token: str | None) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.token = token

    @classmethod
    def from_discovery(cls, disc: Discovery | None = None) -> GatewayHTTP:
        disc = disc or read_discovery()
        assert disc.gateway, "the discovery file has no gateway URL"
        return cls(disc.gateway, disc.token)

    def raw(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = "default",
    ) -> Reply:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        hdrs = dict(headers or {})
        tok = self.token if token == "default" else token
        if tok is not None:
            hdrs.setdefault("Authorization", f"Bearer {tok}")
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Reply:
        return self.raw("GET", path, **kw)

    def post(self, path: str, payload: Any = None, **kw: Any) -> Reply:
        data = json.dumps(payload if payload is not None else {}).encode()
        headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
        return self.raw("POST", path, body=data, headers=headers, **kw)
