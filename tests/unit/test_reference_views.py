"""The gateway's own API reference, in-process: the OpenAPI document it serves is
contracts/openapi.yaml, and the page that draws it loads only the gateway's own files,
which are the vendored ones recorded in reference/VENDORED.md."""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from .conftest import GatewayFactory

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "services/gateway/humantask_gateway/reference"


async def test_the_document_served_is_the_contract(gateway: GatewayFactory) -> None:
    gw = await gateway()
    contract = (ROOT / "contracts/openapi.yaml").read_bytes()

    status, headers, body = await gw.call("GET", "/openapi.yaml")
    assert status == 200
    assert headers["Content-Type"] == "application/yaml; charset=utf-8"
    assert body == contract

    status, headers, document = await gw.call("GET", "/openapi.json")
    assert status == 200
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert document == yaml.safe_load(contract)


async def test_the_document_needs_no_credentials_and_describes_itself(
    gateway: GatewayFactory,
) -> None:
    gw = await gateway()
    _, _, document = await gw.call("GET", "/openapi.json")
    for path in ("/openapi.yaml", "/openapi.json"):
        assert document["paths"][path]["get"]["security"] == []
    assert "/docs" not in document["paths"]  # a page for people, not an operation


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and not values.get("src"):
            self.inline_scripts += 1
        for name in ("src", "href"):
            url = values.get(name) or ""
            # An empty icon, so that the browser asks for no /favicon.ico.
            if url and tag in ("script", "link", "img") and url != "data:,":
                self.urls.append(url)
        if "style" in values:
            raise AssertionError(f"an inline style on <{tag}>: the CSP would refuse it")


async def test_the_page_loads_only_the_gateways_own_files(gateway: GatewayFactory) -> None:
    gw = await gateway()
    status, headers, page = await gw.call("GET", "/docs")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self';" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assets = _Assets()
    assets.feed(page.decode())
    assert assets.inline_scripts == 0
    assert assets.urls, "the page loads no assets"
    for url in assets.urls:
        assert url.startswith("/docs/"), url
        asset_status, asset_headers, body = await gw.call("GET", url)
        assert asset_status == 200, url
        assert asset_headers["Content-Type"].startswith(("text/javascript", "text/css")), url
        assert body
    start_up = (await gw.call("GET", "/docs/reference.js"))[2].decode()
    assert '"/openapi.json"' in start_up and "validatorUrl: null" in start_up


def test_the_vendored_files_are_the_recorded_ones() -> None:
    """Each vendored file's SHA-256 is the one reference/VENDORED.md records (made by
    scripts/vendor-swagger-ui.sh from the pinned npm package), and its licence ships."""
    recorded = dict(
        re.findall(
            r"^\| `([^`]+)` \| `[^`]+` \| `([0-9a-f]{64})` \|$",
            (REFERENCE / "VENDORED.md").read_text(encoding="utf-8"),
            re.MULTILINE,
        )
    )
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-LICENSE"} <= recorded.keys()
    for name, digest in recorded.items():
        assert hashlib.sha256((REFERENCE / name).read_bytes()).hexdigest() == digest, name
    assert "Apache License" in (REFERENCE / "swagger-ui-LICENSE").read_text(encoding="utf-8")


def test_the_json_copy_is_the_yaml_document() -> None:
    assert json.loads((REFERENCE / "openapi.json").read_text(encoding="utf-8")) == yaml.safe_load(
        (REFERENCE / "openapi.yaml").read_text(encoding="utf-8")
    )
