"""/v1/images: links the operator placed in the catalogue are followed, traversal is not.

The demo's sample catalogue links ``images/`` to a shared folder outside GATEWAY_CATALOG_DIR,
so a check on the resolved target would answer 404 for every product photo.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import GatewaySettings
from gateway.transport.rest.routes.meta import catalogue_file


@pytest.fixture
def layout(tmp_path: Path, make_png) -> dict[str, Path]:
    """catalog/images -> shared/images (a linked folder), catalog/one.png -> shared/one.png."""
    shared, catalog = tmp_path / "shared", tmp_path / "catalog"
    (shared / "images" / "flats").mkdir(parents=True)
    catalog.mkdir()
    (shared / "images" / "flats" / "7.png").write_bytes(make_png(7))
    (shared / "one.png").write_bytes(make_png(1))
    (shared / "secret.png").write_bytes(b"outside the catalogue, beside the linked folder")
    (catalog / "images").symlink_to(shared / "images", target_is_directory=True)
    (catalog / "one.png").symlink_to(shared / "one.png")
    return {"catalog": catalog, "shared": shared}


@pytest.fixture
def settings(layout: dict[str, Path]) -> GatewaySettings:  # overrides conftest's; rig uses it
    return GatewaySettings(
        api_keys="k1",
        vote_token_secret="s3cret",
        catalog_dir=layout["catalog"],
        rate_limit_per_minute=0,
    )


async def test_images_behind_links_in_the_catalogue_are_served(rig, layout, make_png) -> None:
    for path, body in (("images/flats/7.png", make_png(7)), ("one.png", make_png(1))):
        got = await rig.client.get(f"/v1/images/{path}")
        assert got.status_code == 200, path
        assert got.headers["content-type"] == "image/png" and got.content == body


@pytest.mark.parametrize(
    "url",
    [
        "/v1/images/images/%2e%2e/secret.png",  # up out of the linked folder
        "/v1/images/images/flats/%2e%2e/%2e%2e/%2e%2e/shared/secret.png",
        "/v1/images/%2e%2e/shared/secret.png",
        "/v1/images/images%2f..%2fsecret.png",
        "/v1/images/images/missing.png",
        "/v1/images/images",  # a folder
    ],
)
async def test_traversal_and_missing_files_are_404(rig, url: str) -> None:
    assert (await rig.client.get(url)).status_code == 404


async def test_absolute_paths_are_404(rig, layout) -> None:
    secret = layout["shared"] / "secret.png"
    assert (await rig.client.get(f"/v1/images/{secret}")).status_code == 404  # //tmp/...


def test_catalogue_file_checks_the_request_path_not_the_link_target(layout) -> None:
    root = layout["catalog"]
    assert catalogue_file(root, "images/flats/7.png") == root / "images" / "flats" / "7.png"
    assert catalogue_file(root, "./images/flats/7.png") == root / "images" / "flats" / "7.png"
    for bad in (
        "images/../secret.png",
        "images/flats/../../one.png",  # would stay inside, but `..` is never followed
        str(layout["shared"] / "secret.png"),
        "",
        ".",
        "images/7\x00.png",
        "images\\..\\secret.png",
    ):
        assert catalogue_file(root, bad) is None, repr(bad)
