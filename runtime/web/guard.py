"""Guard: the ASGI middleware that decides who may talk to the app.

- A token (when set) is required on every API call and page: `Authorization:
  Bearer TOKEN`, or the cookie that visiting `/?token=TOKEN` sets. Static files
  carry no data and stay open.
- `allowed_hosts` (when set) rejects requests whose Host header names another
  host, so a web page cannot reach a loopback server through DNS rebinding.
- A request that changes something (any method but GET/HEAD/OPTIONS) from a
  page of another origin is refused, so other sites cannot launch runs through
  the user's browser.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit

from runtime.web.http import error_response

if TYPE_CHECKING:
    from collections.abc import Collection

    from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "runtime_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Guard:
    """Wraps `app`; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None = None,
        allowed_hosts: Collection[str] | None = None,
    ) -> None:
        self.app = app
        self.token = token
        self.allowed_hosts = (
            {h.lower() for h in allowed_hosts} if allowed_hosts is not None else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get("host", "")
        if self.allowed_hosts is not None and _hostname(host) not in self.allowed_hosts:
            response = error_response(
                403,
                "Forbidden",
                f"Host {host!r} is not one this server answers to; use one of: "
                f"{', '.join(sorted(self.allowed_hosts))}.",
            )
            await response(scope, receive, send)
            return
        method = scope["method"]
        origin = headers.get("origin")
        if method not in _SAFE_METHODS and origin is not None and urlsplit(origin).netloc != host:
            response = error_response(
                403, "Forbidden", f"Requests from {origin} may not change anything on this server."
            )
            await response(scope, receive, send)
            return
        path: str = scope["path"][len(scope.get("root_path", "")) :] or "/"
        if self.token is None or path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        given = query.get("token")
        if given is not None and method in _SAFE_METHODS and not path.startswith("/api/"):
            await self._login(scope, receive, send, given, query)
            return
        if self._authorized(headers):
            await self.app(scope, receive, send)
            return
        if path.startswith("/api/"):
            response = error_response(
                401,
                "Unauthorized",
                "This server needs its token: send `Authorization: Bearer TOKEN`, "
                "or open /?token=TOKEN in the browser first.",
            )
            response.headers["www-authenticate"] = "Bearer"
        else:
            from starlette.responses import HTMLResponse

            response = HTMLResponse(_LOGIN_PAGE, status_code=401)
        await response(scope, receive, send)

    def _authorized(self, headers: dict[str, str]) -> bool:
        assert self.token is not None
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and _same(credentials.strip(), self.token):
            return True
        return _same(_cookies(headers.get("cookie", "")).get(COOKIE, ""), self.token)

    async def _login(
        self, scope: Scope, receive: Receive, send: Send, given: str, query: dict[str, str]
    ) -> None:
        from starlette.responses import HTMLResponse, RedirectResponse

        assert self.token is not None
        if not _same(given, self.token):
            await HTMLResponse(_LOGIN_PAGE, status_code=401)(scope, receive, send)
            return
        # Drop the token from the address bar (and the history) once it is a cookie.
        rest = urlencode({k: v for k, v in query.items() if k != "token"})
        target = scope.get("root_path", "") + scope["path"][len(scope.get("root_path", "")) :]
        response = RedirectResponse(target + (f"?{rest}" if rest else ""), status_code=303)
        response.set_cookie(
            COOKIE,
            self.token,
            httponly=True,
            samesite="strict",
            path=scope.get("root_path", "") or "/",
        )
        await response(scope, receive, send)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0].lower()
    return host.rsplit(":", 1)[0].lower() if host.count(":") == 1 else host.lower()


def _cookies(header: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            found[name] = value
    return found


_LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>runtime: token needed</title>
<style>body{font:16px system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em}
code{background:#eee;padding:0 .3em}</style></head>
<body><h1>This server needs its token</h1>
<p>Open <code>/?token=TOKEN</code> with the token it was started with
(<code>--auth-token</code> or <code>RUNTIME_WEB_TOKEN</code>); the browser keeps it as a cookie.</p>
</body></html>
"""
