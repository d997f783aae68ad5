"""The status page's files: served at / and /ui/{name} with strict security and cache
headers, public also in token mode (the data is not), small, and built without HTML
strings. The page itself is exercised in a real browser in test_status_page_browser.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from authkit import token_client
from yarl import URL

from no8sd.api.ui import UI_DIR

ASSET_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
               ".svg": "image/svg+xml"}
# Ways to turn a string into markup or code; the page must use none of them.
HTML_SINKS = re.compile(r"\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|"
                        r"createContextualFragment|DOMParser|eval\s*\(|new\s+Function|"
                        r"setAttribute\(\s*[\"']on)")


def _directives(csp: str) -> dict[str, list[str]]:
    found = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            found[words[0]] = words[1:]
    return found


async def test_page_is_served_with_a_strict_policy_and_revalidated_by_etag(make_client):
    client = await make_client()
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    html = await resp.text()
    csp = _directives(resp.headers["Content-Security-Policy"])
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["require-trusted-types-for"] == ["'script'"]
    assert "unsafe-inline" not in resp.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-cache"
    etag = resp.headers["ETag"]
    # Nothing inline: every script and style comes from a file of this origin.
    assert "<style" not in html and " style=" not in html
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert re.search(r'src="/ui/[a-z]+\.js"', tag), tag
    assert re.search(r"<script[^>]*>[^<]+</script>", html) is None
    again = await client.get("/", headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""
    assert again.headers["ETag"] == etag
    weak = await client.get("/", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status == 304
    stale = await client.get("/", headers={"If-None-Match": '"not-this-one"'})
    assert stale.status == 200


async def test_every_file_the_page_loads_is_served_and_all_of_them_are_small(make_client):
    client = await make_client()
    index = await (await client.get("/")).text()
    wanted = set(re.findall(r'(?:src|href)="(/ui/[^"]+)"', index))
    seen: set[str] = set()
    while wanted - seen:
        path = sorted(wanted - seen)[0]
        seen.add(path)
        resp = await client.get(path)
        assert resp.status == 200, path
        suffix = Path(path).suffix
        assert resp.content_type == ASSET_TYPES[suffix], path
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["ETag"]
        if suffix == ".js":  # follow the module graph
            text = await resp.text()
            wanted |= {f"/ui/{name}" for name in re.findall(r'from "\./([a-z]+\.js)"', text)}
    shipped = {f"/ui/{p.name}" for p in UI_DIR.iterdir()} - {"/ui/index.html"}
    assert shipped == seen, "files shipped but never loaded, or loaded but not shipped"
    total = sum(p.stat().st_size for p in UI_DIR.iterdir())
    assert total <= 150 * 1024, f"the page's files add up to {total} bytes"


@pytest.mark.parametrize("path", [
    "/ui/nope.js", "/ui/..%2fapp.py", "/ui/%2e%2e", "/ui/.hidden.js", "/ui/Index.html",
    "/ui/app.py", "/ui/app.js.map", "/ui/app.js%00.css", "/ui/" + "a" * 300 + ".js",
    "/ui/%2e%2e%2f%2e%2e%2fpyproject.toml"])
async def test_names_outside_the_shipped_files_are_404(make_client, path):
    client = await make_client()
    resp = await client.get(URL(path, encoded=True))  # sent as written, not normalised
    assert resp.status == 404
    assert (await resp.json())["detail"]


async def test_page_and_files_are_public_in_token_mode_but_data_is_not(make_client):
    client = await token_client(make_client)
    for path in ("/", "/ui/app.js", "/ui/style.css"):
        resp = await client.get(path)
        assert resp.status == 200, path
    for path in ("/api/v1/resource-counts", "/api/v1/resource-search",
                 "/api/v1/auth/permissions"):
        resp = await client.get(path)
        assert resp.status == 401, path


def test_scripts_never_turn_strings_into_markup_or_code():
    for path in sorted(UI_DIR.glob("*.js")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not HTML_SINKS.search(line), f"{path.name}:{number}: {line.strip()}"


def test_scripts_reach_only_their_own_origin():
    """Every request the page makes is a same-origin path: no host, no CORS mode, and no
    token in a URL."""
    for path in sorted(UI_DIR.glob("*.js")):
        text = path.read_text().replace('"http://www.w3.org/2000/svg"', "")  # a name
        assert not re.search(r"https?://", text), path.name
        assert "mode:" not in text and "access_token=" not in text, path.name
        for call in re.findall(r"\b(?:fetch|api)\(\s*([`\"'][^`\"']*)", text):
            assert call[1:].startswith("/api/v1/"), (path.name, call)


async def test_browsers_asking_for_favicon_ico_get_the_icon(make_client):
    # Browsers ask for /favicon.ico on any page of the daemon (a JSON reply included):
    # the icon, not a 404 in the console.
    client = await make_client()
    resp = await client.get("/favicon.ico")
    assert resp.status == 200
    assert resp.content_type == "image/svg+xml"
    assert await resp.read() == (UI_DIR / "icon.svg").read_bytes()
