"""The gateway reaches the embedder over (m)TLS: TF Serving's ``--ssl_config_file``.

Before, the gateway's embedder client had no TLS option, so a TF Serving secured with an
SSLConfig could not be used at all, and the images crossed the network in clear text. Real
processes: our embedder server (a toy model) started with an SSLConfig that requires client
certificates, and the gateway's own gRPC client with GATEWAY_EMBEDDER_TLS__* settings.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from fashionrec_common.grpc_auth import ClientTls
from fashionrec_testing.supervisor import Supervisor, free_port
from gateway.adapters.resilience import CallPolicy
from gateway.config import GatewaySettings
from gateway.errors import DependencyUnavailable
from gateway.wiring import build_embedder


def text_proto_string(text: str) -> str:
    """A text-format string literal, escaped as protobuf writes one (PEM holds line breaks)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


@pytest.fixture(scope="module")
def tls_embedder(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``grpc://127.0.0.1:PORT`` of an embedder server whose gRPC port is mTLS only."""
    from fashionrec_testing.toy_model import export_toy_model

    root = tmp_path_factory.mktemp("tls-embedder")
    export_toy_model(root / "models", "toy", 1, warmup=False)
    ssl_config = root / "ssl.config"
    ssl_config.write_text(
        f"server_key: {text_proto_string((pki / 'server.key').read_text())}\n"
        f"server_cert: {text_proto_string((pki / 'server.pem').read_text())}\n"
        f"custom_ca: {text_proto_string((pki / 'ca.pem').read_text())}\n"
        "client_verify: true\n"
    )
    grpc_port, rest_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "embedder_server", "--port", str(grpc_port),
           "--rest_api_port", str(rest_port), "--model_name", "toy",
           "--model_base_path", str(root / "models" / "toy"),
           "--ssl_config_file", str(ssl_config)]  # fmt: skip

    def ready() -> bool:  # REST stays plain HTTP, as TF Serving's: it says when ready
        try:
            return httpx.get(f"http://127.0.0.1:{rest_port}/v1/models/toy", timeout=1).is_success
        except httpx.HTTPError:
            return False

    with Supervisor(colour=False, grace_s=30) as sup:
        sup.wait_until(sup.start("embedder", cmd), ready, timeout_s=90)
        yield f"grpc://127.0.0.1:{grpc_port}"


async def embed_with(url: str, tls: ClientTls | None) -> list[list[float]]:
    from fashionrec_testing.toy_model import png_bytes

    client = build_embedder(url, CallPolicy(timeout_s=10.0, retries=0), tls=tls)
    try:
        return await client.embed("toy", [png_bytes(1)])
    finally:
        await client.close()


async def test_sec_gateway_embeds_over_mutual_tls(pki: Path, tls_embedder: str) -> None:
    trusted = ClientTls(
        ca_file=pki / "ca.pem", cert_file=pki / "client.pem", key_file=pki / "client.key"
    )
    vectors = await embed_with(tls_embedder, trusted)
    assert len(vectors) == 1 and len(vectors[0]) == 16

    refused = {
        "plaintext": None,
        "no client certificate": ClientTls(ca_file=pki / "ca.pem"),
        "certificate of another CA": ClientTls(
            ca_file=pki / "ca.pem", cert_file=pki / "stranger.pem", key_file=pki / "stranger.key"
        ),
        "server not trusted": ClientTls(
            ca_file=pki / "other-ca.pem", cert_file=pki / "client.pem", key_file=pki / "client.key"
        ),
    }
    for why, tls in refused.items():
        try:
            await embed_with(tls_embedder, tls)
        except DependencyUnavailable:
            continue
        pytest.fail(f"{why}: the embedder answered")


def test_sec_embedder_tls_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GATEWAY_EMBEDDER_TLS__CA_FILE", str(tmp_path / "ca.pem"))
    monkeypatch.setenv("GATEWAY_EMBEDDER_TLS__SERVER_NAME", "embedder")
    settings = GatewaySettings(api_keys="k", vote_token_secret="s")
    assert settings.embedder_tls == ClientTls(ca_file=tmp_path / "ca.pem", server_name="embedder")


def test_sec_embedder_tls_never_falls_back_to_plaintext(
    pki: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TLS asked for and an http:// URL: refused at start, not silently sent in clear."""
    with pytest.raises(ValueError, match="plain http"):
        build_embedder("http://127.0.0.1:8501", CallPolicy(), tls=ClientTls(ca_file=pki / "ca.pem"))
    monkeypatch.setenv("GATEWAY_EMBEDDER_URL", "http://127.0.0.1:8501")
    monkeypatch.setenv("GATEWAY_EMBEDDER_TLS__CA_FILE", str(pki / "ca.pem"))
    with pytest.raises(ValidationError, match="needs a grpc:// or https://"):
        GatewaySettings(api_keys="k", vote_token_secret="s")


def test_sec_embedder_server_refuses_a_broken_ssl_config(tmp_path: Path) -> None:
    """A server told to use TLS that cannot must not start serving plaintext."""
    bad = tmp_path / "ssl.config"
    bad.write_text('server_cert: "x"\nclient_verify: true\n')
    done = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "embedder_server",
            "--model_base_path",
            str(tmp_path),
            "--ssl_config_file",
            str(bad),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "server_key and server_cert" in done.stderr


def test_sec_embedder_rest_tls_uses_the_same_settings(pki: Path) -> None:
    """https:// gets the CA and client certificate too; a gRPC-only override is refused."""
    import ssl

    context = ClientTls(
        ca_file=pki / "ca.pem", cert_file=pki / "client.pem", key_file=pki / "client.key"
    ).ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "ca"),),)]
    with pytest.raises(ValueError, match="grpc:// URLs only"):
        ClientTls(ca_file=pki / "ca.pem", server_name="embedder").ssl_context()
