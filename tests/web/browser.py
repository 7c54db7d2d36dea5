"""A real headless Chromium (Debian's, never a downloaded one) driven by Playwright, for the UI tests."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from playwright.async_api import Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOW_TO_GET_IT = "apt-get install chromium (make test installs it when missing)"


def require_chromium() -> None:
    """Skip without the browser locally; on CI a missing browser fails the test."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"The UI tests need {CHROMIUM}: {HOW_TO_GET_IT}.")
    pytest.skip(f"The UI tests need {CHROMIUM}: {HOW_TO_GET_IT}.")


@asynccontextmanager
async def chromium_page(
    profile: Path, *, width: int = 1360, height: int = 900
) -> AsyncIterator[Page]:
    """A page in a fresh Chromium profile; fails the test if the page's scripts threw."""
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height},
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            page.set_default_timeout(15_000)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            # The browser logs every 4xx it is answered; the tests ask for some on purpose.
            page.on(
                "console",
                lambda message: (
                    errors.append(message.text)
                    if message.type == "error"
                    and not message.text.startswith("Failed to load resource")
                    else None
                ),
            )
            yield page
            assert not errors, errors
        finally:
            await context.close()
