"""The explorer page in a real headless Chromium: map, title search, neighbours."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine

from api.main import create_app
from recsys.settings import Settings

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]


@contextmanager
def headless_page() -> Iterator[object]:
    """A page in the system's headless Chromium (skips where there is none)."""
    playwright = pytest.importorskip("playwright.sync_api")
    executable = chromium_path()
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser.new_page()
        finally:
            browser.close()


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium on this machine: `make test` installs Debian's chromium package")


@pytest.fixture
def served(trained_engine: Engine, settings: Settings) -> Iterator[str]:
    """The real app served by uvicorn on a free loopback port, in a thread."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 20 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_explorer_draws_the_map_finds_a_title_and_lists_neighbours(
    served: str, tmp_path: Path
) -> None:
    with headless_page() as page:
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{served}/explorer")
        page.wait_for_function(
            "document.querySelectorAll('#map .scatterlayer .point').length > 0", timeout=15_000
        )
        assert page.locator("#map .scatterlayer .point").count() == 20
        assert "20 items with 20 or more ratings" in page.locator("#summary").inner_text()

        page.fill("#search", "comedy number 3")
        page.locator("#results button.item").first.click()
        page.wait_for_selector("#neighbours li.neighbour", timeout=10_000)
        assert page.locator("#selected-title").inner_text() == "Nearest to Comedy number 3"
        neighbours = page.locator("#neighbours li.neighbour button").all_inner_texts()
        assert len(neighbours) == 10
        assert sum(title.startswith("Comedy") for title in neighbours[:9]) == 9

        page.select_option("#y-axis", "pc3")
        page.wait_for_function(
            "document.querySelector('#map .ytitle').textContent.startsWith('PC3')"
        )
        page.screenshot(path=str(tmp_path / "explorer.png"))
        assert not errors, errors


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_api_docs_render_without_internet_access(served: str) -> None:
    with headless_page() as page:
        outside: list[str] = []

        def only_the_app(route: object) -> None:
            url = route.request.url  # type: ignore[attr-defined]
            if url.startswith(served):
                route.continue_()  # type: ignore[attr-defined]
            else:
                outside.append(url)
                route.abort()  # type: ignore[attr-defined]

        page.route("**/*", only_the_app)
        page.goto(f"{served}/docs")
        page.wait_for_selector(".opblock", timeout=15_000)
        assert page.locator(".opblock").count() >= 15
        assert page.locator("button.authorize").count() == 1  # the API key scheme
        assert outside == []
