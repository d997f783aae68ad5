"""A real headless Chromium for the status page tests, driven by Selenium.

The browser and its driver are Debian's `chromium` and `chromium-driver` (.ci/run
installs them); both paths are given to Selenium, so nothing is ever downloaded. Every
browser gets a fresh profile directory. Helpers: wait on a condition in the page (never
sleep), read the console, set a phone-sized viewport, and save full-page screenshots.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
OUTPUT = Path(__file__).parent / "output"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
         "--window-size=1280,900")
DESKTOP = (1280, 900)
PHONE = (375, 812)


def require_chromium() -> None:
    """Fail (not skip) when the browser is missing: .ci/run installs it, so this is a gate."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: apt-get install chromium chromium-driver")


class Browser:
    """One headless Chromium with its own profile, closed with close()."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        require_chromium()
        self.profile = tempfile.mkdtemp(prefix="no8sd-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*FLAGS, f"--user-data-dir={self.profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
        self.driver.set_script_timeout(10)
        self.logs: list[dict[str, Any]] = []

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # ---- page ------------------------------------------------------------------------

    def open(self, url: str) -> None:
        self.driver.get(url)

    def js(self, script: str, *args: Any) -> Any:
        """Run `script` (a function body; use `return`) in the page."""
        return self.driver.execute_script(script, *args)

    def text(self, selector: str = "body") -> str:
        return str(self.js("const el = document.querySelector(arguments[0]);"
                           "return el ? el.innerText : '';", selector))

    def wait(self, predicate: Callable[[], Any], timeout: float = 15.0,
             what: str = "condition") -> Any:
        """Poll `predicate` until it is truthy; fail with `what` and the page text."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
            except Exception as exc:  # the page is between two states
                last = exc
            if last and not isinstance(last, Exception):
                return last
            time.sleep(0.05)
        raise AssertionError(f"{what} not met within {timeout}s (last: {last!r});"
                             f" page text:\n{self.text()[:2000]}")

    def wait_text(self, text: str, selector: str = "body", timeout: float = 15.0) -> None:
        self.wait(lambda: text in self.text(selector), timeout, f"{text!r} in {selector}")

    def click(self, selector: str) -> None:
        self.js("document.querySelector(arguments[0]).click();", selector)

    # ---- console -----------------------------------------------------------------------

    def console(self) -> list[dict[str, Any]]:
        """Every console entry so far (the driver hands each out once; kept here)."""
        self.logs.extend(self.driver.get_log("browser"))
        return self.logs

    def console_errors(self) -> list[dict[str, Any]]:
        return [e for e in self.console() if e.get("level") == "SEVERE"]

    # ---- viewport and screenshots --------------------------------------------------------

    def viewport(self, size: tuple[int, int], *, dark: bool = False) -> None:
        """Emulate a screen of `size` CSS pixels (a phone below 500 px wide)."""
        width, height = size
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1,
            "mobile": width < 500})
        self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})

    def screenshot(self, name: str, *, max_height: int = 2400) -> Path:
        """Save the page down to its end (at most `max_height` CSS px) as OUTPUT/name.png."""
        OUTPUT.mkdir(exist_ok=True)
        height = int(self.js("return Math.ceil(document.body.getBoundingClientRect().bottom"
                             " + window.scrollY)"))
        width = int(self.js("return document.documentElement.clientWidth"))
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": min(height, max_height),
                     "scale": 1}})
        path = OUTPUT / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


def describe(entries: list[dict[str, Any]]) -> str:
    return json.dumps(entries, indent=1)[:3000]
