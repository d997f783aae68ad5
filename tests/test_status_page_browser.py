"""The status page in a real headless Chromium against a `no8sd` subprocess.

One browser serves the whole module (starting Chromium is the slow part); every test
has its own daemon and database. The page must load without console errors, show
changes live (no reload: a marker set in the page survives), render hostile data as
text, keep everything behind the login in token mode, come back after a daemon
restart, work from the keyboard, and fit a 375 px phone. Screenshots of the main views
go to tests/output/.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from browser import DESKTOP, PHONE, Browser, describe
from conftest import WIDGET_SCHEMA
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

PLUGIN = ("--plugin", "no8sd_testplugins.widgets:WidgetReconciler")
ADMIN = ("root", "root-password-123")
ADMIN_ENV = {"INITIAL_ADMIN_USERNAME": ADMIN[0], "INITIAL_ADMIN_PASSWORD": ADMIN[1]}
PAYLOAD = ('<img src=x onerror="window.__xss=(window.__xss||0)+1">'
           '<script>window.__xss=1</script>&amp;<b>bold</b>')


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    browser = Browser()
    yield browser
    browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Browser]:
    """The shared browser, on a blank page at desktop size, with its console drained."""
    chromium.open("about:blank")
    chromium.viewport(DESKTOP)
    chromium.console()
    chromium.logs = []
    yield chromium


def call(daemon: Any, method: str, path: str, body: Any = None, token: str | None = None,
         status: int | None = None) -> Any:
    """Call the daemon's API as a script would; check the status when given."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(daemon.url + path, method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            code, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        code, raw = exc.code, exc.read()
    if status is not None:
        assert code == status, (method, path, code, raw[:500])
    return json.loads(raw) if raw else None


def widget_type(daemon: Any, token: str | None = None, description: str = "Widgets") -> None:
    call(daemon, "POST", "/api/v1/resource-types", {
        "name": "Widget", "version": "v1", "schema": WIDGET_SCHEMA,
        "description": description}, token, status=201)


def widget(daemon: Any, name: str, spec: dict[str, Any] | None = None,
           token: str | None = None, **extra: Any) -> dict[str, Any]:
    created: dict[str, Any] = call(daemon, "POST", "/api/v1/resources", {
        "name": name, "resource_type_name": "Widget", "resource_type_version": "v1",
        "spec": spec or {"size": 1}, **extra}, token, status=201)
    return created


def login(daemon: Any, username: str, password: str) -> str:
    answer = call(daemon, "POST", "/api/v1/auth/login",
                  {"username": username, "password": password}, status=200)
    token: str = answer["access_token"]
    return token


def row_text(page: Browser, name: str) -> str:
    return str(page.js(
        "for (const row of document.querySelectorAll('#rows tr')) {"
        "  const link = row.querySelector('.col-name a');"
        "  if (link && link.textContent === arguments[0]) return row.innerText; }"
        "return '';", name))


def mark(page: Browser) -> None:
    """Set a marker that only survives if the page is never reloaded."""
    page.js("window.__samePage = 'yes';")


def still_same_page(page: Browser) -> bool:
    return bool(page.js("return window.__samePage === 'yes';"))


def no_console_errors(page: Browser) -> None:
    errors = page.console_errors()
    assert not errors, describe(errors)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---- live updates ------------------------------------------------------------------------


def test_created_resources_appear_live_and_a_failure_shows_degraded(page, daemon_factory):
    daemon = daemon_factory(*PLUGIN)
    widget_type(daemon)
    page.open(daemon.url + "/")
    page.wait_text("Resource types")
    page.wait(lambda: page.text("#tiles").startswith("0"), what="an empty overview")
    page.wait(lambda: "Live" in page.text("#conn"), what="the stream to connect")
    mark(page)

    widget(daemon, "web-frontend")
    page.wait(lambda: "1\nReady" in page.text("#tiles"), what="the overview to count it")
    page.click('#nav a[data-view="resources"]')
    page.wait(lambda: "Ready" in row_text(page, "web-frontend"), what="the row, Ready")

    broken = widget(daemon, "billing-worker", {"fail": "disk full on /var"})
    page.wait(lambda: "Failed" in row_text(page, "billing-worker"), what="the failure")
    assert "disk full on /var" in row_text(page, "billing-worker")
    page.click(f'a[href="#/resources/{broken["id"]}"]')

    def degraded() -> str:
        return str(page.js("const row = document.querySelector('tr[data-condition=Degraded]');"
                           "return row ? row.innerText : '';"))

    page.wait(lambda: "True" in degraded() and "disk full on /var" in degraded(),
              what="Degraded True with the message")
    assert "Failed" in page.text("#facts")
    page.wait(lambda: "Failed" in page.text("#history"), what="the failed attempt in history")
    assert still_same_page(page)
    no_console_errors(page)


def test_hostile_text_in_data_is_shown_as_text_and_runs_nothing(page, daemon_factory):
    daemon = daemon_factory(*PLUGIN)
    schema = json.loads(json.dumps(WIDGET_SCHEMA))
    schema["properties"]["color"]["description"] = PAYLOAD
    call(daemon, "POST", "/api/v1/resource-types", {
        "name": "Widget", "version": "v1", "schema": schema,
        "description": "Widgets " + PAYLOAD}, status=201)
    calm = widget(daemon, "calm", {"size": 1, "outputs": {"note": PAYLOAD}},
                  metadata={"note": PAYLOAD})
    angry = widget(daemon, "angry", {"fail": PAYLOAD})
    checks = {
        "#/": PAYLOAD,  # recent failures show the message
        "#/resources": PAYLOAD,
        f"#/resources/{angry['id']}": PAYLOAD,  # status, conditions, spec, history
        f"#/resources/{calm['id']}": json.dumps(PAYLOAD),  # spec, metadata, outputs
        "#/types": "Widgets " + PAYLOAD,
        "#/types/Widget/v1": PAYLOAD,
    }
    page.open(daemon.url + "/")
    page.wait_text("Overview")
    for route, expected in checks.items():
        page.js("location.hash = arguments[0];", route)
        page.wait(lambda expected=expected: expected in page.text("main"), timeout=20,
                  what=f"the payload as text on {route}")
        found = page.js(
            "return {xss: window.__xss === undefined ? null : window.__xss,"
            " injected: document.querySelectorAll('main img, main script, main b, [onerror]')"
            ".length, scripts: document.scripts.length};")
        assert found == {"xss": None, "injected": 0, "scripts": 1}, (route, found)
    no_console_errors(page)


# ---- token mode --------------------------------------------------------------------------


def _submit_login(page: Browser, username: str, password: str) -> None:
    for selector, value in (("#login-user", username), ("#login-password", password)):
        field = page.driver.find_element(By.CSS_SELECTOR, selector)
        field.clear()
        field.send_keys(value)
    page.driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()


def test_token_mode_shows_only_a_login_until_the_daemon_accepts_one(page, daemon_factory):
    daemon = daemon_factory("--auth", "token", *PLUGIN, env=ADMIN_ENV)
    token = login(daemon, *ADMIN)
    widget_type(daemon, token)
    widget(daemon, "secret-widget", token=token)

    page.open(daemon.url + "/")
    page.wait(lambda: page.js("return !!document.querySelector('form.login');"),
              what="the login form")
    assert page.js("return document.getElementById('top').hidden;") is True
    shown = page.text()
    assert "secret-widget" not in shown and "Widget" not in shown and "Resources" not in shown
    asked = page.js("return performance.getEntriesByType('resource').map(e => e.name)"
                    ".filter(n => n.includes('/api/'));")
    assert [a.split(daemon.url, 1)[1] for a in asked] == ["/api/v1/auth/permissions"]

    _submit_login(page, ADMIN[0], "not-the-password")
    page.wait_text("Login failed", "#login-error")
    assert page.js("return sessionStorage.getItem('no8sd.token');") is None
    assert page.js("return document.getElementById('top').hidden;") is True

    _submit_login(page, *ADMIN)
    page.wait(lambda: page.js("return !document.getElementById('top').hidden;"),
              what="the page after login")
    page.click('#nav a[data-view="resources"]')
    page.wait(lambda: "secret-widget" in page.text("#rows"), what="data after login")
    stored = page.js("return sessionStorage.getItem('no8sd.token');")
    assert stored and stored not in page.driver.current_url
    urls = page.js("return performance.getEntriesByType('resource').map(e => e.name);")
    assert not [u for u in urls if stored in u], "the token went into a URL"
    assert "root" in page.text("#who")

    page.click("#logout")
    page.wait(lambda: page.js("return !!document.querySelector('form.login');"),
              what="the login form after logout")
    assert page.js("return sessionStorage.getItem('no8sd.token');") is None
    assert "secret-widget" not in page.text()
    call(daemon, "GET", "/api/v1/resources", token=stored, status=401)  # revoked
    # The only errors are the two expected 401s (not logged in; the wrong password).
    errors = page.console_errors()
    assert all(e["source"] == "network" and "401" in e["message"] for e in errors), \
        describe(errors)


def test_actions_show_only_when_allowed_and_work_from_the_keyboard(page, daemon_factory):
    daemon = daemon_factory("--auth", "token", *PLUGIN, env=ADMIN_ENV)
    admin = login(daemon, *ADMIN)
    widget_type(daemon, admin)
    target = widget(daemon, "doomed", token=admin)
    role = call(daemon, "POST", "/api/v1/custom-roles", {
        "name": "viewer", "permissions": [{"resource_type_name": "Widget",
                                           "resource_type_version": "v1",
                                           "operations": ["READ"]}]}, admin, status=201)
    call(daemon, "POST", "/api/v1/users", {"username": "viewer", "password": "viewer-pass-123",
                                           "custom_role_id": role["id"]}, admin, status=201)
    viewer = login(daemon, "viewer", "viewer-pass-123")
    resource_page = f"{daemon.url}/#/resources/{target['id']}"

    # A reader sees the resource but no buttons for what they may not do.
    page.open(daemon.url + "/ui/icon.svg")  # the page's origin, to hold the token
    page.js("sessionStorage.setItem('no8sd.token', arguments[0]);", viewer)
    page.open(resource_page)
    page.wait(lambda: "Ready" in page.text("#facts"), what="the resource for the reader")
    assert page.js("return document.querySelectorAll('#actions button').length;") == 0

    page.js("sessionStorage.setItem('no8sd.token', arguments[0]);", admin)
    page.driver.refresh()
    page.wait(lambda: page.js("return !!document.getElementById('delete');"),
              what="the admin's buttons")
    keys = ActionChains(page.driver)

    def tab_to(element_id: str) -> None:
        page.js("document.activeElement.blur(); document.body.focus();")
        for _ in range(60):
            if page.js("return document.activeElement.id;") == element_id:
                return
            keys.send_keys(Keys.TAB).perform()
        raise AssertionError(f"#{element_id} cannot be reached with Tab")

    tab_to("reconcile")
    keys.send_keys(Keys.ENTER).perform()
    page.wait_text("Reconciliation requested", "#toast")
    tab_to("delete")
    keys.send_keys(Keys.ENTER).perform()
    page.wait(lambda: page.js("return document.querySelector('dialog.confirm').open;"),
              what="the confirmation")
    assert page.js("return document.activeElement.id;") == "confirm-cancel"
    keys.send_keys(Keys.ESCAPE).perform()
    page.wait(lambda: not page.js("return document.querySelector('dialog.confirm').open;"),
              what="the confirmation to close")
    assert call(daemon, "GET", f"/api/v1/resources/{target['id']}", token=admin,
                status=200)["status"] == "ready"

    tab_to("delete")
    keys.send_keys(Keys.ENTER).perform()
    page.wait(lambda: page.js("return document.querySelector('dialog.confirm').open;"),
              what="the confirmation")
    keys.send_keys(Keys.TAB).perform()
    assert page.js("return document.activeElement.id;") == "confirm-delete"
    keys.send_keys(Keys.ENTER).perform()
    page.wait_text("This resource has been removed", "#notice", timeout=20)
    call(daemon, "GET", f"/api/v1/resources/{target['id']}", token=admin, status=404)
    assert "REMOVED" in page.text("#events")
    no_console_errors(page)


# ---- reconnecting ------------------------------------------------------------------------


def test_page_reconnects_after_a_daemon_restart_and_catches_up(page, daemon_factory,
                                                               tmp_path):
    port = free_port()
    database = tmp_path / "restart.db"
    first = daemon_factory(*PLUGIN, db=database, port=port)
    widget_type(first)
    widget(first, "before")
    page.open(first.url + "/#/resources")
    page.wait(lambda: "Ready" in row_text(page, "before"), what="the first resource")
    page.wait(lambda: "Live" in page.text("#conn"), what="the stream")
    mark(page)

    assert first.stop() == 0
    page.wait(lambda: page.js("return !document.getElementById('banner').hidden;"),
              what="the offline banner")
    assert "Offline" in page.text("#conn")

    second = daemon_factory(*PLUGIN, db=database, port=port)
    widget(second, "after")
    page.wait(lambda: "Ready" in row_text(page, "after"), timeout=20,
              what="the resource made after the restart")
    page.wait(lambda: page.js("return document.getElementById('banner').hidden;"),
              what="the banner to go")
    assert "Live" in page.text("#conn")
    assert still_same_page(page)
    # The expected refusals while the daemon was down are network errors, nothing else.
    errors = page.console_errors()
    assert all(e["source"] == "network" for e in errors), describe(errors)


def test_stream_reader_parses_split_frames_and_remembers_where_it_was(page,
                                                                      daemon_factory):
    """The page's own SSE parser (stream.js) on frames cut at awkward places."""
    daemon = daemon_factory()
    page.open(daemon.url + "/")
    page.wait(lambda: "Live" in page.text("#conn"), what="the page")
    chunks = ["retry: 2000\n: connected\n\n", "id: 7\nevent: MODI", 'FIED\ndata: {"a":',
              "1}\r\n\r", "\n: heartbeat\n\nid: 8\nevent: GAP\ndata: {\"resume_after\":",
              "\ndata: 12}\n\n", "id: 9\n\n", "id: 99999999999999999999\nevent: X\n"]
    result = page.driver.execute_async_script("""
        const [chunks, done] = arguments;
        import("/ui/stream.js").then(async ({EventStream}) => {
          const got = [];
          const stream = new EventStream({onEvent: (e) => got.push(e), onState() {},
                                          onUnauthorized() {}});
          stream.controller = new AbortController();
          const encoder = new TextEncoder();
          const body = new ReadableStream({start(c) {
            for (const chunk of chunks) c.enqueue(encoder.encode(chunk));
            c.close();
          }});
          await stream.read(body);
          done({got, last: stream.lastId});
        }).catch((e) => done({error: String(e)}));""", chunks)
    assert result == {"got": [{"id": "7", "type": "MODIFIED", "data": {"a": 1}},
                              {"id": "8", "type": "GAP", "data": {"resume_after": 12}}],
                      "last": "9"}


# ---- phones and screenshots --------------------------------------------------------------


def test_main_views_fit_desktop_and_phone_and_are_saved_as_screenshots(page, daemon_factory):
    daemon = daemon_factory(*PLUGIN, "--plugin", "no8sd_testplugins.widgets:GadgetReconciler")
    widget_type(daemon, description="A widget the test plugin makes at once")
    call(daemon, "POST", "/api/v1/resource-types", {
        "name": "Gadget", "version": "v1", "schema": {"type": "object"},
        "description": "Gadgets are always fine"}, status=201)
    made = {}
    for i, name in enumerate(["web-frontend", "api-gateway", "billing-worker", "cache-redis",
                              "search-indexer-for-the-archive-with-a-long-name",
                              "backup-nightly", "metrics-agent"]):
        spec: dict[str, Any] = {"size": i + 1, "color": "blue",
                                "outputs": {"url": f"https://{name[:14]}.example"}}
        if name in ("billing-worker", "backup-nightly"):
            spec["fail"] = "upstream answered 503: connection refused by 10.0.0.7:5432"
        if name == "metrics-agent":
            spec["sleep"] = 600  # stays `reconciling`
        made[name] = widget(daemon, name, spec, metadata={"team": "platform"})
    for name in ("edge-router", "vpn-tunnel"):
        call(daemon, "POST", "/api/v1/resources", {
            "name": name, "resource_type_name": "Gadget", "resource_type_version": "v1",
            "spec": {"port": 443}}, status=201)
    views = {"overview": "#/", "resources": "#/resources",
             "resource": f"#/resources/{made['billing-worker']['id']}",
             "type": "#/types/Widget/v1"}
    page.open(daemon.url + "/")
    for size, label in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.viewport(size)
        for view, route in views.items():
            page.js("location.hash = arguments[0];", route)
            if view == "resources":
                page.wait(lambda: "Failed" in row_text(page, "backup-nightly")
                          and "Ready" in row_text(page, "vpn-tunnel"), what="the table")
            elif view == "resource":
                page.wait(lambda: "Degraded" in page.text("#conditions")
                          and "Failed" in page.text("#history"), what="the resource")
            elif view == "type":
                page.wait(lambda: "color" in page.text("main"), what="the schema")
            else:
                page.wait(lambda: "2\nFailed" in page.text("#tiles")
                          and "1\nIn progress" in page.text("#tiles"), what="the overview")
            page.js("document.activeElement.blur();")
            width = page.js("return document.documentElement.scrollWidth;")
            assert width <= size[0], f"{view} is {width}px wide at {size[0]}px"
            shot = page.screenshot(f"status-page-{view}-{label}")
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Dark when the system is dark.
    page.viewport(PHONE, dark=True)
    page.js("location.hash = '#/';")
    page.wait(lambda: "2\nFailed" in page.text("#tiles"), what="the overview")
    background = page.js("return getComputedStyle(document.body).backgroundColor;")
    assert sum(map(int, background[4:-1].split(",")[:3])) < 120, background
    page.screenshot("status-page-overview-phone-dark")
    no_console_errors(page)
