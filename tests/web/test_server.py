"""The front end's server: static pages, where the API is, and headers that keep API text from becoming code."""

import json
import re

import httpx
import pytest

from jobstream.settings import WebSettings
from web.app import STATIC_DIR, build_web_app

pytestmark = [pytest.mark.anyio, pytest.mark.unit]

SETTINGS = WebSettings(host="127.0.0.1", port=8080, api_url="http://127.0.0.1:8000")


@pytest.fixture
async def web():
    transport = httpx.ASGITransport(app=build_web_app(SETTINGS))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as client:
        yield client


async def test_the_page_and_its_config_are_served_with_a_policy_that_runs_only_its_own_scripts(web):
    page = await web.get("/")
    config = await web.get("/config.json")

    assert page.status_code == 200 and '<main id="view"' in page.text
    assert config.json() == {"api_url": "http://127.0.0.1:8000"}
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "connect-src 'self' http://127.0.0.1:8000;" in policy
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_every_asset_the_page_names_is_served_from_this_server(web):
    page = (await web.get("/")).text
    assets = re.findall(r'(?:src|href)="(/[^"]+)"', page)

    assert len(assets) >= 4
    for asset in assets:
        assert (await web.get(asset)).status_code == 200, asset
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page), "no CDN"
    for module in (STATIC_DIR / "js").rglob("*.js"):
        for imported in re.findall(r'from "([^"]+)"', module.read_text()):
            assert imported.startswith("."), f"{module.name} imports {imported} from outside the repo"
            assert (module.parent / imported).resolve().is_file(), f"{module.name}: {imported} is missing"


def test_the_vendored_chart_library_is_the_version_the_lockfile_pins():
    lock = json.loads((STATIC_DIR.parent / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/chart.js"]["version"]
    banner = (STATIC_DIR / "vendor" / "chart.umd.min.js").read_text()[:200]

    assert f"Chart.js v{pinned}" in banner
