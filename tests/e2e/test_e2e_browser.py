"""The web UI in Debian's Chromium against the running system (no stand-ins).

Shop: click an item, upload a photo. Annotator: sign in, five keyboard votes.
Leaderboard: the votes show. Screenshots go to artifacts/screenshots/system-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fashionrec_common.browser import CHROMIUM, chromium

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.browser]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium missing (make system-deps installs it)")
    pytest.importorskip("playwright.sync_api", reason="pip install playwright==1.65.2")
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any, system: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=system.annotation
    )
    p = context.new_page()
    p.set_default_timeout(30_000)
    yield p
    context.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"system-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000


def test_shop_click_an_item_then_upload_a_photo(page: Any, system: Any, tmp_path: Path) -> None:
    page.goto("/")
    page.wait_for_selector("#browse .card")
    page.select_option("#catalogue", "shoes")
    page.wait_for_selector("#browse .card")
    page.fill("#k", "5")
    clicked = page.locator("#browse .card").nth(1)
    clicked_id = clicked.get_attribute("data-item-id")
    clicked.click()
    page.wait_for_selector("#results-grid .card")
    cards = page.locator("#results-grid .card")
    assert cards.count() == 5
    shown = [cards.nth(i).get_attribute("data-item-id") for i in range(5)]
    assert clicked_id not in shown
    expected = httpx.get(
        f"{system.gateway}/v1/items/{clicked_id}/similar", params={"k": 5, "catalogue": "shoes"}
    ).json()
    assert shown == [i["id"] for i in expected["items"]]
    page.wait_for_function("Array.from(document.images).every(i => i.complete && i.naturalWidth)")
    shot(page, "shop")

    photo = tmp_path / "my-heel.jpg"
    photo.write_bytes(system.photo("heels"))
    page.set_input_files("#photo", str(photo))
    page.click("#upload button")
    page.wait_for_selector("#results-title:has-text('my-heel.jpg')")
    page.wait_for_selector("#results-grid .card")
    assert page.locator("#results-grid .card").count() == 5
    shot(page, "upload")


def test_five_keyboard_votes_change_the_leaderboard(page: Any, system: Any) -> None:
    token = httpx.post(
        f"{system.annotation}/v1/annotators",
        json={"name": "browser-e2e"},
        headers={"X-Admin-Key": "e2e-admin"},
    ).json()["token"]
    before = httpx.get(f"{system.annotation}/v1/leaderboard").json()["votes"]
    page.goto("/annotate")
    page.fill("#annotator-token", token)
    page.click("#signin-form button")
    page.wait_for_selector("#rows[data-seq='1'] .row")
    assert page.locator("#rows .row").count() >= 2
    shot(page, "annotate")
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
