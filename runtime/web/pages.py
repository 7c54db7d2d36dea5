"""The UI: one HTML page for every UI path (the script draws the page the path names) and the
static files shipped in `runtime/web/static/`, served from a fixed list read at start."""

from __future__ import annotations

import html
from importlib import resources
from typing import TYPE_CHECKING

from starlette.responses import HTMLResponse, Response

from runtime.web.http import ApiError

if TYPE_CHECKING:
    from starlette.requests import Request

PAGE_PATHS = (
    "/",
    "/locations",
    "/locations/{name}",
    "/locations/{name}/jobs/{job}",
    "/assets",
    "/runs",
    "/runs/{run_id}",
    "/schedules",
    "/sensors",
)

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}
# The UI loads nothing from elsewhere, runs no inline script but its config, and may not be framed.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "content-security-policy": _CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class StaticFiles:
    """The files of runtime/web/static, read once; any other name is a 404."""

    def __init__(self) -> None:
        folder = resources.files("runtime.web") / "static"
        self._files: dict[str, tuple[bytes, str]] = {}
        for entry in folder.iterdir():
            suffix = "." + entry.name.rsplit(".", 1)[-1]
            if entry.is_file() and suffix in _TYPES:
                self._files[entry.name] = (entry.read_bytes(), _TYPES[suffix])
        self._index = self._files.pop("index.html")[0].decode()

    async def file(self, request: Request) -> Response:
        name = request.path_params["file"]
        found = self._files.get(name)
        if found is None:
            raise ApiError(404, "NotFound", f"No static file {name!r}.")
        content, media_type = found
        return Response(
            content,
            media_type=media_type,
            headers={"cache-control": "no-cache", **SECURITY_HEADERS},
        )

    async def page(self, request: Request) -> Response:
        # Mounted under a prefix, the script must prefix every URL it builds.
        base = html.escape(request.scope.get("root_path", "").rstrip("/"), quote=True)
        return HTMLResponse(
            self._index.replace("{{BASE}}", base),
            headers={"cache-control": "no-cache", **SECURITY_HEADERS},
        )
