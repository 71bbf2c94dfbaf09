"""What a shopper and an annotator see, in Debian's Chromium, against the running system.

The browser is offline: any request that leaves the machine is refused and fails the test.
One table of views (open a page, do what a person does, then every product photo shown must
have loaded: natural width > 0) and one of API documentation pages that must render.
Screenshots go to artifacts/screenshots/system-*.png.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from fashionrec_testing.browser import chromium_or_skip

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.browser]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
LOCAL = {"127.0.0.1", "localhost"}
K = 5


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_or_skip() as b:
        yield b


@pytest.fixture
def outside() -> list[str]:
    """URLs the page tried to fetch from outside the machine (refused)."""
    return []


@pytest.fixture
def page(browser: Any, system: Any, outside: list[str]) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=system.annotation
    )

    def offline(route: Any) -> None:
        if urlsplit(route.request.url).hostname in LOCAL or route.request.url.startswith("data:"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", offline)
    p = context.new_page()
    p.set_default_timeout(30_000)
    yield p
    context.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"system-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000


def photos_loaded(page: Any, selector: str) -> int:
    """Every image matching ``selector`` finished loading with pixels; returns how many."""
    page.wait_for_selector(selector)
    page.eval_on_selector_all(selector, "els => els.forEach(e => { e.loading = 'eager'; })")
    page.wait_for_function(
        "sel => [...document.querySelectorAll(sel)].every(i => i.complete)", arg=selector
    )
    shown = page.eval_on_selector_all(selector, "els => els.map(e => [e.src, e.naturalWidth])")
    broken = [src for src, width in shown if not width]
    assert not broken, f"{len(broken)} of {len(shown)} photos did not load, e.g. {broken[:3]}"
    return len(shown)


# What a person does on each page before looking at the photos.


def browse(page: Any, system: Any, tmp_path: Path) -> None:
    page.goto("/")
    page.wait_for_selector("#browse .card")
    page.select_option("#catalogue", "shoes")
    page.wait_for_selector("#browse .card")


def similar_items(page: Any, system: Any, tmp_path: Path) -> None:
    browse(page, system, tmp_path)
    page.fill("#k", str(K))
    clicked = page.locator("#browse .card").nth(1)
    clicked_id = clicked.get_attribute("data-item-id")
    clicked.click()
    page.wait_for_selector("#results-grid .card")
    cards = page.locator("#results-grid .card")
    shown = [cards.nth(i).get_attribute("data-item-id") for i in range(cards.count())]
    expected = httpx.get(
        f"{system.gateway}/v1/items/{clicked_id}/similar", params={"k": K, "catalogue": "shoes"}
    ).json()
    assert shown == [i["id"] for i in expected["items"]] and clicked_id not in shown


def upload_photo(page: Any, system: Any, tmp_path: Path) -> None:
    browse(page, system, tmp_path)
    page.fill("#k", str(K))
    photo = tmp_path / "my-heel.jpg"
    photo.write_bytes(system.photo("heels"))
    page.set_input_files("#photo", str(photo))
    page.click("#upload button")
    page.wait_for_selector("#results-title:has-text('my-heel.jpg')")
    page.wait_for_selector("#results-grid .card")
    assert page.locator("#results-grid .card").count() == K


def sign_in(page: Any, system: Any, tmp_path: Path) -> None:
    page.goto("/annotate")
    page.fill("#annotator-token", system.annotator_token)
    page.click("#signin-form button")
    page.wait_for_selector("#rows[data-seq='1'] .row")
    assert page.locator("#rows .row").count() >= 2


@dataclass(frozen=True)
class View:
    name: str
    act: Callable[[Any, Any, Path], None]
    photos: str  # the product photos this view shows
    at_least: int


VIEWS = [
    View("browse", browse, "#browse .card img", K),
    View("similar", similar_items, "#results-grid .card img", K),
    View("upload", upload_photo, "#results-grid .card img", K),
    View("annotate", sign_in, "#query img, #rows .row img", 3),
]


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.name)
def test_product_photos_load(
    page: Any, system: Any, tmp_path: Path, outside: list[str], view: View
) -> None:
    view.act(page, system, tmp_path)
    assert photos_loaded(page, view.photos) >= view.at_least
    shot(page, view.name)
    assert not outside, f"requests left the machine: {outside}"


@dataclass(frozen=True)
class Docs:
    service: str
    path: str
    rendered: str  # a selector that exists once the page has drawn the API


DOCS = [
    pytest.param(Docs("gateway", "/docs", "#swagger-ui .opblock")),
    pytest.param(Docs("gateway", "/redoc", "redoc [data-section-id]")),
    pytest.param(Docs("annotation", "/docs", "#swagger-ui .opblock")),
    pytest.param(Docs("annotation", "/redoc", "redoc [data-section-id]")),
]


@pytest.mark.parametrize("docs", DOCS, ids=lambda d: f"{d.service}{d.path}")
def test_api_docs_render_offline(page: Any, system: Any, outside: list[str], docs: Docs) -> None:
    page.goto(system.local.url(docs.service) + docs.path)
    page.wait_for_selector(docs.rendered)
    assert page.locator(docs.rendered).count() >= 3
    assert not outside, f"requests left the machine: {outside}"


def test_five_keyboard_votes_change_the_leaderboard(
    page: Any, system: Any, outside: list[str]
) -> None:
    token = httpx.post(
        f"{system.annotation}/v1/annotators",
        json={"name": "browser-e2e"},
        headers={"X-Admin-Key": system.local.admin_key},
    ).json()["token"]
    before = httpx.get(f"{system.annotation}/v1/leaderboard").json()["votes"]
    page.goto("/annotate")
    page.fill("#annotator-token", token)
    page.click("#signin-form button")
    page.wait_for_selector("#rows[data-seq='1'] .row")
    for n, key in enumerate([1, 2, 0, 1, 2], start=1):
        page.keyboard.press(str(key))
        page.wait_for_function(f"document.getElementById('vote-count').textContent === '{n}'")
        page.wait_for_selector(f"#rows[data-seq='{n + 1}'] .row")
    board = httpx.get(f"{system.annotation}/v1/leaderboard").json()
    assert board["votes"] == before + 5

    page.goto("/leaderboard")
    page.wait_for_selector("#board tbody tr")
    summary = page.locator("#summary").inner_text()
    assert f"{before + 5} votes" in summary
    assert page.locator('[data-testid="winrate-chart"] rect.bar').count() >= 2
    shot(page, "leaderboard")
    assert not outside, f"requests left the machine: {outside}"
