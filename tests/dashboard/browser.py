"""A real headless Chromium for the dashboard's tests, driven by Selenium.

Debian's ``chromium`` and ``chromium-driver`` (``scripts/_browser.sh`` installs them when
missing); Selenium is told where both are, so it never tries to download a browser or a
driver. Each browser gets a fresh profile folder. ``Page`` wraps the driver with the few
things the tests do: open a URL, read the page with a small JavaScript expression, wait
until one is true, and save a screenshot under the test-artifacts folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from supervisor.testing import wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)
ROOT = Path(__file__).resolve().parents[2]


def artifacts_dir() -> Path:
    """Where screenshots go: ``$JOBVISOR_TEST_ARTIFACTS``, else ``test-artifacts/``."""
    folder = Path(os.environ.get("JOBVISOR_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def start_chromium(profile: Path) -> webdriver.Chrome:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        raise RuntimeError(
            f"{', '.join(missing)} missing: ./scripts/test installs Debian's chromium and "
            "chromium-driver (scripts/_browser.sh)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


class Page:
    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver

    def open(self, url: str) -> None:
        self.driver.get(url)

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        return self.driver.execute_script(f"return ({expression});")

    def until(self, expression: str, *, timeout: float = 20.0, message: str = "") -> Any:
        """Wait until the expression is truthy in the page; return its value."""
        return wait_for(
            lambda: self.js(expression),
            timeout=timeout,
            interval=0.1,
            message=message or expression,
        )

    def screenshot(self, name: str) -> Path:
        path = artifacts_dir() / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path


def new_profile() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="jv-chromium-")
