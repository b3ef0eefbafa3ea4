"""Fixtures for end-to-end tests: the whole local stack plus headless Chromium (Playwright).

Rules: the stack is started once per module on free ports (``StackConfig.ephemeral``), so it runs beside a
developer's ``make run``; set ``PHOTOSCALE_E2E_SITE_URL`` to drive an already-running site instead.
Chromium is Debian's ``/usr/bin/chromium`` (never ``playwright install``). The site sends the
production Content-Security-Policy (added to the edge server's headers while ``infra/edge.yaml`` does not
provide one; headers are not injected by Playwright routing, which would make Chromium treat the page as
non-local and block the presigned upload to 127.0.0.1 under Local Network Access). Any console error, page
error, failed request or HTTP error response fails the test.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("PHOTOSCALE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "artifacts" / "e2e"
CSP = ("default-src 'self'; img-src 'self' data: blob:; connect-src 'self' http://127.0.0.1:*; style-src 'self'; "
       "script-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")


def _build_is_stale() -> bool:
    index = ROOT / "edge" / "dist" / "index.html"
    if not index.exists():
        return True
    built = index.stat().st_mtime
    sources = [ROOT / "edge" / "index.html", ROOT / "edge" / "build.py", *(ROOT / "edge" / "src").rglob("*")]
    return any(p.is_file() and p.stat().st_mtime > built for p in sources)


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The site origin (``/api`` and ``/media`` on it), with the web client built."""
    existing = os.environ.get("PHOTOSCALE_E2E_SITE_URL")
    if _build_is_stale():
        subprocess.run([sys.executable, str(ROOT / "edge" / "build.py")], check=True, cwd=ROOT)
    if existing:
        yield existing.rstrip("/")
        return
    from devstack.stack import LocalStack, StackConfig

    config = StackConfig.ephemeral(regions=("us-east-1",), log_dir=tmp_path_factory.mktemp("stack-logs"))
    with LocalStack(config) as stack:
        site = stack._site  # the in-process EdgeServer
        site.security_headers = {**site.security_headers,
                                 "Content-Security-Policy": resolved_csp(site.security_headers, stack.aws_endpoint)}
        yield stack.site_url


def resolved_csp(headers: dict, upload_origin: str) -> str:
    """The CSP the site must send: ``infra/edge.yaml``'s policy with ``${UploadOrigin}`` resolved to the local
    S3 endpoint (the edge server may hand over the template's unresolved ``{"Fn::Sub": ...}``), else ``CSP``."""
    policy = headers.get("Content-Security-Policy")
    if isinstance(policy, dict) and isinstance(policy.get("Fn::Sub"), str):
        policy = policy["Fn::Sub"]
    if not isinstance(policy, str) or not policy.strip():
        return CSP
    policy = policy.replace("${UploadOrigin}", upload_origin)
    assert "${" not in policy, f"unresolved variable in the CSP: {policy}"
    return " ".join(policy.split())


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Problems:
    """Everything that went wrong in the browser, in words."""
    items: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.items.append(text)


@pytest.fixture
def problems() -> Iterator[Problems]:
    found = Problems()
    yield found
    assert not found.items, "browser problems:\n  " + "\n  ".join(found.items)


@pytest.fixture
def new_page(browser, site_url: str, problems: Problems) -> Iterator[Callable]:
    """Factory: ``new_page(width, height)`` → a page in a fresh context (its own session storage)."""
    contexts = []

    def make(width: int = 1280, height: int = 900):
        context = browser.new_context(viewport={"width": width, "height": height}, base_url=site_url,
                                      reduced_motion="reduce")  # no fades mid-screenshot
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda m: problems.add(f"console {m.type}: {m.text} ({m.location.get('url')})")
                if m.type == "error" else None)
        page.on("pageerror", lambda exc: problems.add(f"page error: {exc}"))
        # ERR_ABORTED is the browser cancelling a page's fetches when the test navigates away: not a failure.
        page.on("requestfailed", lambda r: problems.add(f"request failed: {r.method} {r.url}: {r.failure}")
                if r.failure != "net::ERR_ABORTED" else None)
        page.on("response", lambda r: problems.add(f"HTTP {r.status}: {r.request.method} {r.url}")
                if r.status >= 400 else None)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def shot() -> Callable:
    """``shot(page, "name")`` saves ``artifacts/e2e/name.png`` (full page)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def save(page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
