"""Model server configuration: ``model_config_list`` text protos and single-model flags."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from embedder_server.errors import invalid

ModelConfig = model_server_config_pb2.ModelConfig


def configs_from_server_config(
    config: model_server_config_pb2.ModelServerConfig, base_dir: Path | None = None
) -> list[ModelConfig]:
    """The model list, relative base paths resolved against the config file's folder."""
    if config.WhichOneof("config") != "model_config_list":
        raise invalid("ModelServerConfig must contain a model_config_list")
    out: list[ModelConfig] = []
    seen: set[str] = set()
    for entry in config.model_config_list.config:
        if not entry.name or not entry.base_path:
            raise invalid("Every model config needs a name and a base_path")
        if entry.name in seen:
            raise invalid(f"Illegal to list model {entry.name} multiple times in config list")
        if entry.model_platform and entry.model_platform != "tensorflow":
            raise invalid(f"Unsupported model_platform: {entry.model_platform}")
        seen.add(entry.name)
        copy = ModelConfig()
        copy.CopyFrom(entry)
        if base_dir is not None and not Path(entry.base_path).is_absolute():
            copy.base_path = str((base_dir / entry.base_path).resolve())
        out.append(copy)
    return out


def parse_config_text(text: str, base_dir: Path | None = None) -> list[ModelConfig]:
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise invalid(f"Invalid model config: {exc}") from exc
    return configs_from_server_config(config, base_dir)


def load_config_file(path: Path) -> list[ModelConfig]:
    return parse_config_text(path.read_text(), path.parent)


def single_model(name: str, base_path: str) -> list[ModelConfig]:
    """``--model_name``/``--model_base_path`` as a one-entry config (latest version policy)."""
    path = str(Path(base_path).resolve())
    return [ModelConfig(name=name, base_path=path, model_platform="tensorflow")]
