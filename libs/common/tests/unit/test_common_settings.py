import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from fashionrec_common.settings import ServiceSettings


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")
    port: int = 1


def test_prefix_reads_environment(monkeypatch):
    monkeypatch.setenv("DEMO_PORT", "8123")
    monkeypatch.setenv("DEMO_LOG_LEVEL", "DEBUG")
    settings = DemoSettings()
    assert settings.port == 8123
    assert settings.log_level == "DEBUG"


def test_bad_values_fail_at_startup(monkeypatch):
    monkeypatch.setenv("DEMO_LOG_LEVEL", "LOUD")
    with pytest.raises(ValidationError):
        DemoSettings()
