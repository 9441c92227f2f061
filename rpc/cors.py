"""Browsers: CORS on the JSON-RPC endpoint and the WebSocket origin check, as geth does them.

A page served from another origin may call the replica only if the operator allows
its origin, like geth's ``--http.corsdomain`` and ``--ws.origins``:

- HTTP: an allowed ``Origin`` gets ``Access-Control-Allow-Origin`` (``*`` when any
  origin is allowed) and ``Vary: Origin``; a preflight ``OPTIONS`` is answered at
  once with the methods (POST, GET), the requested headers and a 600 s max age (geth's
  ``rs/cors`` settings). An origin that is not allowed gets no CORS headers, so the
  browser withholds the answer; no setting means no CORS headers at all.
- WebSocket: an upgrade that carries an ``Origin`` is accepted only from an allowed
  origin (with none configured: ``http://localhost`` and this host, geth's default;
  a rule matches on the scheme, host and port it names), else refused with 403. Clients that send no ``Origin`` (not browsers) always pass:
  the check protects browsers' users, and any other client can send any origin.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

ANY = "*"
ALLOWED_METHODS = "POST, GET"
MAX_AGE = "600"


def origin_list(setting: str) -> frozenset[str]:
    """A comma-separated setting as lower-case origins (blank entries dropped)."""
    return frozenset(part.strip().lower() for part in setting.split(",") if part.strip())


def default_ws_origins() -> frozenset[str]:
    """geth's WebSocket origins when none are configured: localhost and this host's name."""
    return frozenset({"http://localhost", f"http://{socket.gethostname().lower()}"})


def origin_parts(origin: str) -> tuple[str, str, str]:
    """geth's ``parseOriginURL``: (scheme, host, port), the scheme empty when the text has none."""
    text = origin.lower()
    if "://" in text:
        parsed = urlsplit(text)
        return parsed.scheme, parsed.hostname or "", str(parsed.port or "")
    host, _, port = text.partition(":")
    return "", host, port


def rule_allows(rule: str, origin: str) -> bool:
    """geth's ``ruleAllowsOrigin``: every part the rule names must match (``http://localhost``
    allows any port on localhost; ``localhost`` any scheme too)."""
    wanted, given = origin_parts(rule), origin_parts(origin)
    return all(not part or part == other for part, other in zip(wanted, given))


@dataclass(frozen=True)
class BrowserAccess:
    """Which browser origins may use the JSON-RPC over HTTP (CORS) and WebSocket."""

    cors_origins: frozenset[str] = frozenset()
    """Origins allowed to read HTTP answers (``*``: any; empty: CORS off)."""
    ws_origins: frozenset[str] = frozenset()
    """Origins allowed to open a WebSocket (``*``: any; empty: geth's localhost default)."""

    @classmethod
    def from_settings(cls, cors_domains: str, ws_origins: str) -> BrowserAccess:
        return cls(origin_list(cors_domains), origin_list(ws_origins))

    def cors_origin(self, origin: str) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for ``origin``, or None when it is not allowed."""
        if ANY in self.cors_origins:
            return ANY
        return origin if origin.lower() in self.cors_origins else None

    def cors_headers(self, origin: str | None) -> dict[str, str]:
        """The CORS headers of an answer to a request from ``origin``: none without an origin or a
        setting; else ``Vary: Origin``, and ``Access-Control-Allow-Origin`` when it is allowed."""
        if origin is None or not self.cors_origins:
            return {}
        allowed = self.cors_origin(origin)
        headers: dict[str, str] = {} if allowed is None else {hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: allowed}
        headers[hdrs.VARY] = hdrs.ORIGIN
        return headers

    def websocket_allowed(self, origin: str | None) -> bool:
        if origin is None:
            return True
        allowed = self.ws_origins or default_ws_origins()
        return ANY in allowed or any(rule_allows(rule, origin) for rule in allowed)

    def middleware(self, path: str) -> Middleware:
        """An aiohttp middleware applying both rules to requests for ``path`` (the JSON-RPC's)."""

        @web.middleware
        async def browser_access(request: web.Request,
                                 handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
            if request.path != path:
                return await handler(request)
            origin = request.headers.get(hdrs.ORIGIN)
            if request.headers.get(hdrs.UPGRADE, "").lower() == "websocket":
                if not self.websocket_allowed(origin):
                    return web.Response(status=403, text="websocket: request origin not allowed\n")
                return await handler(request)
            if origin is None or not self.cors_origins:
                return await handler(request)
            if request.method == hdrs.METH_OPTIONS and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
                return self._preflight(request, self.cors_origin(origin))
            response = await handler(request)
            for name, value in self.cors_headers(origin).items():
                response.headers.add(name, value)
            return response

        return browser_access

    @staticmethod
    def _preflight(request: web.Request, allowed: str | None) -> web.Response:
        """The answer to a CORS preflight: permissions for an allowed origin, none otherwise."""
        response = web.Response(status=204)
        response.headers[hdrs.VARY] = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        if allowed is None:
            return response
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = allowed
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = ALLOWED_METHODS
        requested = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS)
        if requested:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = requested
        response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = MAX_AGE
        return response
