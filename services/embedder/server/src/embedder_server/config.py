"""Command-line options named like ``tensorflow_model_server``'s flags."""

from __future__ import annotations

import argparse
import ast
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic_settings import SettingsConfigDict

from embedder_server.domain.batcher import BatchingOptions
from fashionrec_common.settings import ServiceSettings

DEFAULT_METRICS_PATH = "/monitoring/prometheus/metrics"


class ServingSettings(ServiceSettings):
    """Process settings from the environment (EMBEDDER_SERVING_LOG_LEVEL, _HOST, ...)."""

    model_config = SettingsConfigDict(env_prefix="EMBEDDER_SERVING_")

    # HandleReloadConfigRequest can unload every model; TF Serving has no auth on it, so off.
    allow_model_management: bool = False


@dataclass(frozen=True)
class SslConfig:
    """TF Serving's ``SSLConfig`` (tensorflow_serving/config/ssl_config.proto): PEM text, not
    paths. It secures the gRPC port only, as in TF Serving; REST stays plain HTTP."""

    server_key: str
    server_cert: str
    custom_ca: str = ""
    client_verify: bool = False

    def __repr__(self) -> str:  # never print the private key
        return f"SslConfig(client_verify={self.client_verify}, custom_ca={bool(self.custom_ca)})"


@dataclass
class ServerOptions:
    port: int = 8500
    rest_api_port: int = 8501
    host: str = "127.0.0.1"
    model_config_file: Path | None = None
    model_name: str = "default"
    model_base_path: str | None = None
    file_system_poll_wait_seconds: float = 1.0
    batching: BatchingOptions | None = None
    metrics_path: str | None = DEFAULT_METRICS_PATH
    rest_api_timeout_s: float | None = 30.0
    max_request_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = 25_000_000
    max_inflight: int = 256
    allow_model_management: bool = False
    intra_op_threads: int = 0  # 0: TensorFlow's choice (one per core)
    inter_op_threads: int = 0
    ssl: SslConfig | None = None  # gRPC over TLS (--ssl_config_file)


def _text_proto_values(text: str) -> dict[str, str]:
    """``name { value: 3 }`` and ``name: 3`` pairs from a flat text proto (no TF proto needed)."""
    pairs = re.findall(r"(\w+)\s*\{\s*value\s*:\s*([^\s}]+)\s*\}", text)
    pairs += re.findall(r"(\w+)\s*:\s*(\"[^\"]*\"|[^\s{},]+)", text)
    return {k: v.strip('"') for k, v in pairs if k != "value"}


def parse_batching_file(text: str) -> BatchingOptions:
    """TF Serving's BatchingParameters text format (the fields we honour)."""
    vals = _text_proto_values(text)
    base = BatchingOptions()
    return BatchingOptions(
        max_batch_size=int(vals.get("max_batch_size", base.max_batch_size)),
        batch_timeout_s=int(vals.get("batch_timeout_micros", base.batch_timeout_s * 1e6)) / 1e6,
        num_batch_threads=int(vals.get("num_batch_threads", base.num_batch_threads)),
        max_enqueued_batches=int(vals.get("max_enqueued_batches", base.max_enqueued_batches)),
    )


# ``field: "quoted" "pieces"`` (adjacent strings concatenate, C escapes) or ``field: word``.
_SSL_FIELD = re.compile(r'(\w+)\s*:\s*((?:"(?:[^"\\]|\\.)*"\s*)+|[^\s"]+)', re.S)


def parse_ssl_config_file(text: str) -> SslConfig:
    """TF Serving's SSLConfig text format: ``server_key: "-----BEGIN ...\\n..."`` etc.

    Raises ValueError naming what is missing or wrong, so a bad file stops the server at start
    instead of it serving plaintext."""
    fields: dict[str, str] = {}
    text = re.sub(r"(?m)^\s*#.*$", "", text)  # comment lines (PEM text holds no '#')
    for name, value in _SSL_FIELD.findall(text):
        if value.startswith('"'):
            pieces = re.findall(r'"(?:[^"\\]|\\.)*"', value, re.S)
            # C-style escapes, as protobuf's text format; a raw line break is taken as one
            value = "".join(ast.literal_eval(p.replace("\n", "\\n")) for p in pieces)
        fields[name] = value
    unknown = set(fields) - {"server_key", "server_cert", "custom_ca", "client_verify"}
    if unknown:
        raise ValueError(f"unknown SSLConfig field(s): {', '.join(sorted(unknown))}")
    if not fields.get("server_key") or not fields.get("server_cert"):
        raise ValueError("SSLConfig needs server_key and server_cert (PEM text)")
    verify = fields.get("client_verify", "false").lower()
    if verify not in ("true", "false"):
        raise ValueError(f"client_verify must be true or false, not {verify!r}")
    if verify == "true" and not fields.get("custom_ca"):
        raise ValueError("client_verify: true needs custom_ca, the CA client certificates chain to")
    return SslConfig(
        fields["server_key"], fields["server_cert"], fields.get("custom_ca", ""), verify == "true"
    )


def parse_monitoring_file(text: str) -> str | None:
    """MonitoringConfig ``prometheus_config { enable: true path: "..." }`` -> path or None."""
    vals = _text_proto_values(text)
    if vals.get("enable", "false").lower() != "true":
        return None
    return vals.get("path") or DEFAULT_METRICS_PATH


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m embedder_server", description="TF-Serving-compatible model server."
    )
    p.add_argument("--port", type=int, default=8500, help="gRPC port (0: pick a free one)")
    p.add_argument("--rest_api_port", type=int, default=8501, help="REST port")
    p.add_argument("--host", default=None, help="bind address (default EMBEDDER_SERVING_HOST)")
    p.add_argument("--model_config_file", type=Path, help="model_config_list text proto")
    p.add_argument("--model_name", default="default")
    p.add_argument("--model_base_path", help="one model's base path (without a config file)")
    p.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0)
    p.add_argument("--enable_batching", action="store_true")
    p.add_argument("--batching_parameters_file", type=Path)
    p.add_argument("--max_batch_size", type=int, default=32)
    p.add_argument("--batch_timeout_micros", type=int, default=2000)
    p.add_argument("--num_batch_threads", type=int, default=1)
    p.add_argument("--max_enqueued_batches", type=int, default=100)
    p.add_argument("--monitoring_config_file", type=Path)
    p.add_argument(
        "--ssl_config_file",
        type=Path,
        help="SSLConfig text proto (server_key, server_cert, custom_ca, client_verify): the "
        "gRPC port speaks TLS only, mTLS with client_verify; REST stays plain, as in TF Serving",
    )
    p.add_argument("--disable_metrics", action="store_true", help="no Prometheus endpoint")
    p.add_argument("--rest_api_timeout_in_ms", type=int, default=30000)
    p.add_argument("--max_request_bytes", type=int, default=64 * 1024 * 1024)
    p.add_argument("--max_image_pixels", type=int, default=25_000_000, help="gateway's default")
    p.add_argument("--max_inflight_requests", type=int, default=256)
    p.add_argument(
        "--tensorflow_intra_op_parallelism",
        type=int,
        default=0,
        help="threads one op may use (0: one per core); 1 suits small models under concurrent "
        "requests: a third less CPU per batch-1 call, same latency (docs/benchmarks.md)",
    )
    p.add_argument(
        "--tensorflow_inter_op_parallelism",
        type=int,
        default=0,
        help="ops run at once (0: one per core)",
    )
    return p


def options_from_args(argv: list[str] | None, settings: ServingSettings) -> ServerOptions:
    args = build_parser().parse_args(argv)
    if not args.model_config_file and not args.model_base_path:
        build_parser().error("one of --model_config_file or --model_base_path is required")
    batching = None
    if args.enable_batching:
        if args.batching_parameters_file:
            batching = parse_batching_file(args.batching_parameters_file.read_text())
        else:
            batching = BatchingOptions(
                max_batch_size=args.max_batch_size,
                batch_timeout_s=args.batch_timeout_micros / 1e6,
                num_batch_threads=args.num_batch_threads,
                max_enqueued_batches=args.max_enqueued_batches,
            )
    metrics_path: str | None = None if args.disable_metrics else DEFAULT_METRICS_PATH
    if args.monitoring_config_file:
        metrics_path = parse_monitoring_file(args.monitoring_config_file.read_text())
    ssl = None
    if args.ssl_config_file:
        try:
            ssl = parse_ssl_config_file(args.ssl_config_file.read_text())
        except (OSError, ValueError, SyntaxError) as exc:
            build_parser().error(f"--ssl_config_file {args.ssl_config_file}: {exc}")
    return ServerOptions(
        port=args.port,
        rest_api_port=args.rest_api_port,
        host=args.host or settings.host,
        model_config_file=args.model_config_file,
        model_name=args.model_name,
        model_base_path=args.model_base_path,
        file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
        batching=batching,
        metrics_path=metrics_path,
        rest_api_timeout_s=args.rest_api_timeout_in_ms / 1000 or None,
        max_request_bytes=args.max_request_bytes,
        max_image_pixels=args.max_image_pixels,
        max_inflight=args.max_inflight_requests,
        allow_model_management=settings.allow_model_management,
        intra_op_threads=args.tensorflow_intra_op_parallelism,
        inter_op_threads=args.tensorflow_inter_op_parallelism,
        ssl=ssl,
    )
