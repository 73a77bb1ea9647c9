"""A real MCP Python SDK peer for mcp-auth-sidecar's tests.

One process, two loopback ports:

- an authorization server made of the SDK's own auth routes
  (`mcp.server.auth.routes.create_auth_routes`: metadata, /authorize,
  /token with its client authentication, /register (RFC 7591), /revoke
  (RFC 7009), PKCE), backed by `RotatingProvider` below — our
  `OAuthAuthorizationServerProvider`, which rotates refresh tokens: every
  refresh issues a new one, and a spent one presented again is refused and
  revokes its whole grant;
- a protected MCP server, the SDK's `MCPServer` over Streamable HTTP, whose
  token verifier asks the same provider, with the SDK's RFC 8707 audience
  check on.

The resource server is configured the way the SDK's examples and most
deployments do it, with `AnyHttpUrl(...)` objects: pydantic then adds a `/`
to the bare-origin issuer, so the protected-resource metadata names
`http://127.0.0.1:<as>/` while the metadata's `issuer` is
`http://127.0.0.1:<as>` (the AS is configured with a string).

Approval is a consent page with one form (no login): a scripted browser
(tests/peers/oidc/browser.mjs) submits it.

Prints one JSON line on stdout when both ports listen, then serves until
stdin closes (so a dead test runner never leaves it behind) or SIGTERM.

Environment:
  PY_PEER_AT_TTL             access-token lifetime, seconds (default 3600)
  PY_PEER_PRECLIENT_REDIRECT if set, pre-register a confidential client
                             using client_secret_basic with this redirect URI
                             (its id and secret are in the ready line)

Test-only control endpoints on the AS port, under /control/: `requests`
(every POST to /token, /register, /revoke: grant type, how the client
authenticated, status, OAuth error, fingerprints of the refresh tokens
presented and issued) and `state` (reuse detections, live and revoked
grants).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    TokenVerifier,
    construct_redirect_uri,
)
from mcp.server.auth.routes import create_auth_routes
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

SCOPE = "mcp"
CODE_TTL = 300
AT_TTL = int(os.environ.get("PY_PEER_AT_TTL", "3600"))


def fingerprint(token: str | None) -> str | None:
    """Enough of a hash to tell tokens apart in the request log, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()[:16] if token else None


# Tokens carry the grant they belong to, so revocation and reuse detection
# can end the whole grant (the SDK lets providers subclass these models).
class Code(AuthorizationCode):
    grant: str


class Refresh(RefreshToken):
    grant: str


class Access(AccessToken):
    grant: str


class RotatingProvider:
    """An in-memory `OAuthAuthorizationServerProvider` with rotating refresh tokens."""

    def __init__(self, issuer: str):
        self.issuer = issuer
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.pending: dict[str, tuple[str, AuthorizationParams]] = {}
        self.codes: dict[str, Code] = {}
        self.access: dict[str, Access] = {}
        self.refresh: dict[str, Refresh] = {}
        self.spent: dict[str, str] = {}  # rotated-away refresh token -> grant
        self.revoked_grants: set[str] = set()
        self.reuse_detected = 0

    # -- clients

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        self.clients[client_info.client_id] = client_info

    # -- authorization: park the request until the consent form is submitted

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        if params.resource is None:
            raise AuthorizeError("invalid_request", "this server wants an RFC 8707 resource")
        assert client.client_id is not None
        txn = secrets.token_urlsafe(16)
        self.pending[txn] = (client.client_id, params)
        return f"{self.issuer}/consent?txn={txn}"

    def approve(self, txn: str) -> str:
        client_id, params = self.pending.pop(txn)
        code = secrets.token_urlsafe(32)
        self.codes[code] = Code(
            code=code,
            scopes=params.scopes or [SCOPE],
            expires_at=time.time() + CODE_TTL,
            client_id=client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
            subject="alice",
            grant=secrets.token_urlsafe(8),
        )
        # RFC 9207: `iss` is the metadata's issuer, exactly.
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state, iss=self.issuer)

    async def load_authorization_code(self, client: OAuthClientInformationFull, authorization_code: str) -> Code | None:
        code = self.codes.get(authorization_code)
        return code if code and code.client_id == client.client_id else None

    async def exchange_authorization_code(self, client: OAuthClientInformationFull, authorization_code: Code) -> OAuthToken:
        del self.codes[authorization_code.code]
        return self._issue(authorization_code.client_id, authorization_code.scopes, authorization_code.resource,
                           authorization_code.subject, authorization_code.grant)

    # -- refresh, with rotation and reuse detection

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> Refresh | None:
        if refresh_token in self.spent:
            # Presented again after rotation: someone holds a copy. End the grant.
            self.reuse_detected += 1
            self._revoke_grant(self.spent[refresh_token])
            return None
        token = self.refresh.get(refresh_token)
        return token if token and token.client_id == client.client_id else None

    async def exchange_refresh_token(self, client: OAuthClientInformationFull, refresh_token: Refresh, scopes: list[str]) -> OAuthToken:
        del self.refresh[refresh_token.token]
        self.spent[refresh_token.token] = refresh_token.grant
        return self._issue(refresh_token.client_id, scopes, refresh_token.resource, refresh_token.subject,
                           refresh_token.grant)

    def _issue(self, client_id: str, scopes: list[str], resource: str | None, subject: str | None, grant: str) -> OAuthToken:
        access = secrets.token_urlsafe(32)
        refresh = secrets.token_urlsafe(32)
        self.access[access] = Access(token=access, client_id=client_id, scopes=scopes,
                                     expires_at=int(time.time()) + AT_TTL, resource=resource, subject=subject,
                                     grant=grant)
        self.refresh[refresh] = Refresh(token=refresh, client_id=client_id, scopes=scopes, resource=resource,
                                        subject=subject, grant=grant)
        return OAuthToken(access_token=access, token_type="Bearer", expires_in=AT_TTL, scope=" ".join(scopes),
                          refresh_token=refresh)

    # -- access tokens and revocation

    async def load_access_token(self, token: str) -> Access | None:
        access = self.access.get(token)
        if access and access.expires_at is not None and access.expires_at < time.time():
            return None
        return access

    async def revoke_token(self, token: Access | Refresh) -> None:
        # The SDK asks providers to revoke the access and refresh token together.
        self._revoke_grant(token.grant)

    def _revoke_grant(self, grant: str) -> None:
        self.revoked_grants.add(grant)
        for table in (self.access, self.refresh):
            for key in [k for k, v in table.items() if v.grant == grant]:
                del table[key]

    def state(self) -> dict[str, Any]:
        live = {t.grant for t in self.refresh.values()}
        return {"reuseDetected": self.reuse_detected, "liveGrants": len(live),
                "revokedGrants": len(self.revoked_grants)}


class ProviderVerifier(TokenVerifier):
    """The resource server's token check: ask the AS's provider."""

    def __init__(self, provider: RotatingProvider):
        self.provider = provider

    async def verify_token(self, token: str) -> AccessToken | None:
        return await self.provider.load_access_token(token)


class RequestLog:
    """ASGI middleware recording the OAuth POSTs the AS answers."""

    PATHS = ("/token", "/register", "/revoke")

    def __init__(self, app: Any):
        self.app = app
        self.entries: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.PATHS:
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        body = b"".join(m.get("body", b"") for m in chunks if m["type"] == "http.request")
        replay = list(chunks)

        async def replayed() -> Any:
            return replay.pop(0) if replay else await receive()

        status: list[int] = []
        answer: list[bytes] = []

        async def recorded(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body":
                answer.append(message.get("body", b""))
            await send(message)

        await self.app(scope, replayed, recorded)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        entry: dict[str, Any] = {"at": int(time.time() * 1000), "path": scope["path"],
                                 "status": status[0] if status else None}
        try:
            doc = json.loads(b"".join(answer) or b"null")
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            doc = {}
        if scope["path"] == "/register":
            try:
                sent = json.loads(body)
            except ValueError:
                sent = {}
            entry["requestedAuthMethod"] = sent.get("token_endpoint_auth_method") if isinstance(sent, dict) else None
            entry["authMethod"] = doc.get("token_endpoint_auth_method")
        else:
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
            entry.update({
                "grantType": form.get("grant_type"),
                "tokenTypeHint": form.get("token_type_hint"),
                "clientIdInBody": "client_id" in form,
                "secretInBody": "client_secret" in form,
                "basic": headers.get("authorization", "").startswith("Basic "),
                "presentedRefresh": fingerprint(form.get("refresh_token")),
                "issuedRefresh": fingerprint(doc.get("refresh_token")),
            })
        entry["error"] = doc.get("error")
        entry["errorDescription"] = doc.get("error_description")
        self.entries.append(entry)


class QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: each server's would replace the
    other's, and only one of the two would stop. `main` handles signals."""

    def capture_signals(self) -> Any:
        return contextlib.nullcontext()


def listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def authorization_server(provider: RotatingProvider, issuer: str) -> RequestLog:
    routes = create_auth_routes(
        provider=provider,
        issuer_url=AuthSettings(issuer_url=issuer, resource_server_url=None).issuer_url,
        client_registration_options=ClientRegistrationOptions(enabled=True, valid_scopes=[SCOPE],
                                                              default_scopes=[SCOPE]),
        revocation_options=RevocationOptions(enabled=True),
    )

    async def consent_page(request: Request) -> Response:
        txn = request.query_params.get("txn", "")
        if txn not in provider.pending:
            return HTMLResponse("<p>unknown or finished authorization</p>", status_code=400)
        return HTMLResponse(
            "<!doctype html><title>Allow access</title>"
            '<form method="post" action="/consent">'
            f'<input type="hidden" name="txn" value="{html.escape(txn)}">'
            '<button type="submit">Allow</button></form>'
        )

    async def consent(request: Request) -> Response:
        txn = (await request.form()).get("txn")
        if not isinstance(txn, str) or txn not in provider.pending:
            return HTMLResponse("<p>unknown or finished authorization</p>", status_code=400)
        return RedirectResponse(provider.approve(txn), status_code=302)

    log_box: list[RequestLog] = []

    async def requests(_: Request) -> Response:
        return JSONResponse(log_box[0].entries)

    async def state(_: Request) -> Response:
        return JSONResponse(provider.state())

    routes += [
        Route("/consent", consent_page, methods=["GET"]),
        Route("/consent", consent, methods=["POST"]),
        Route("/control/requests", requests, methods=["GET"]),
        Route("/control/state", state, methods=["GET"]),
    ]
    log = RequestLog(Starlette(routes=routes))
    log_box.append(log)
    return log


def resource_server(provider: RotatingProvider, issuer: str, mcp_url: str) -> Any:
    server = MCPServer(
        name="mcp-auth-sidecar python peer",
        token_verifier=ProviderVerifier(provider),
        auth=AuthSettings(
            # As the SDK's examples write it: pydantic adds the `/`.
            issuer_url=AnyHttpUrl(issuer),
            resource_server_url=AnyHttpUrl(mcp_url),
            required_scopes=[SCOPE],
            validate_token_resource=True,
        ),
    )

    @server.tool()
    def whoami() -> str:
        """The resource owner the token was issued to."""
        return "alice"

    return server.streamable_http_app(json_response=True)


async def main() -> None:
    as_sock, rs_sock = listen(), listen()
    issuer = f"http://127.0.0.1:{as_sock.getsockname()[1]}"
    mcp_url = f"http://127.0.0.1:{rs_sock.getsockname()[1]}/mcp"
    provider = RotatingProvider(issuer)

    ready: dict[str, Any] = {"issuer": issuer, "mcp": mcp_url, "control": f"{issuer}/control"}
    redirect = os.environ.get("PY_PEER_PRECLIENT_REDIRECT")
    if redirect:
        client = OAuthClientInformationFull(
            client_id="preregistered-basic",
            client_secret=secrets.token_urlsafe(24),
            redirect_uris=[redirect],
            token_endpoint_auth_method="client_secret_basic",
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            scope=SCOPE,
        )
        await provider.register_client(client)
        ready["preregistered"] = {"clientId": client.client_id, "clientSecret": client.client_secret}

    as_app = authorization_server(provider, issuer)
    servers = [
        QuietServer(uvicorn.Config(as_app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)),
        QuietServer(uvicorn.Config(resource_server(provider, issuer, mcp_url), log_level="warning",
                                   lifespan="on", timeout_graceful_shutdown=2)),
    ]
    loop = asyncio.get_running_loop()

    def stop(*_: Any) -> None:
        for s in servers:
            s.should_exit = True

    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_signal_handler(signal.SIGINT, stop)

    def watch_stdin() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        loop.call_soon_threadsafe(stop)

    threading.Thread(target=watch_stdin, daemon=True).start()

    serving = [asyncio.create_task(s.serve(sockets=[sock])) for s, sock in zip(servers, (as_sock, rs_sock))]
    while not all(s.started for s in servers):
        if any(t.done() for t in serving):
            break
        await asyncio.sleep(0.02)
    else:
        print(json.dumps(ready), flush=True)
    await asyncio.gather(*serving)


if __name__ == "__main__":
    asyncio.run(main())
