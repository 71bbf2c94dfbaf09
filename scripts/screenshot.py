"""The README's screenshot, taken from the system `make demo` runs (start the demo first).

    .venv/bin/python scripts/screenshot.py [--port gateway.http=9080 ...] [--out PATH]

Opens the shop page in the shared Chromium launcher (offline: nothing may leave the
machine), picks a shoe, waits until every photo of its most similar items has loaded
(natural width > 0) and saves the page. The demo's ports are found as the demo finds them
(scripts/demo.py: the system description, moved with the same --port options).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from demo import ROOT, local_system
from demo import parse_args as demo_args

from fashionrec_testing.browser import CHROMIUM, chromium

PHOTOS = "#results-grid .card img"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", action="append", default=[], metavar="SERVICE.NAME=N")
    parser.add_argument("--catalogue", default="shoes")
    parser.add_argument("--item", type=int, default=3, help="which browsed item to open")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "artifacts" / "screenshots" / "demo-shop.png"
    )
    args = parser.parse_args()
    demo = demo_args([arg for move in args.port for arg in ("--port", move)])
    shop = local_system(demo, demo.var / "demo-catalog").url("annotation")
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: `make system-deps` installs it", file=sys.stderr)
        return 2
    refused: list[str] = []

    def offline(route: Any) -> None:
        if urlsplit(route.request.url).hostname in {"127.0.0.1", "localhost"}:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route("**/*", offline)
        page.set_default_timeout(60_000)
        page.goto(f"{shop}/")
        page.wait_for_selector("#browse .card")
        page.select_option("#catalogue", args.catalogue)
        page.wait_for_selector("#browse .card")
        page.locator("#browse .card").nth(args.item).click()
        page.wait_for_selector(PHOTOS)
        page.wait_for_function(
            "sel => [...document.querySelectorAll(sel)].every(i => i.complete)", arg=PHOTOS
        )
        widths = page.eval_on_selector_all(PHOTOS, "els => els.map(e => e.naturalWidth)")
        if not widths or not all(widths):
            print(f"{widths.count(0)} of {len(widths)} photos did not load", file=sys.stderr)
            return 1
        page.evaluate("window.scrollTo(0, 0)")  # the header and controls above the results
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out))
    if refused:
        print(f"the page tried to leave the machine: {refused}", file=sys.stderr)
        return 1
    print(f"{len(widths)} similar items, every photo loaded: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
