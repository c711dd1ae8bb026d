"""Settings: every contract variable, its default, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.settings import MissingSettingError, Settings

CONTRACT_VARIABLES = {
    "SERENADE_DATABASE_URL": None,
    "SERENADE_NATS_URL": None,
    "SERENADE_JWT_SECRET": None,
    "SERENADE_DATA_DIR": Path(".serenade"),
    "SERENADE_STORAGE_URL": None,
    "SERENADE_API_HOST": "127.0.0.1",
    "SERENADE_API_PORT": 8000,
    "SERENADE_PROVIDER": "local",
    "SERENADE_PROVIDER_FAILURE_RATE": 0.0,
    "SERENADE_PROVIDER_DELAY_MS": 0,
    "SERENADE_MAX_ATTEMPTS": 3,
    "SERENADE_RETRY_BACKOFF": (1.0, 5.0, 25.0),
    "SERENADE_GENERATOR_CONCURRENCY": 1024,
    "SERENADE_SIGNED_URL_TTL": 900,
    "SERENADE_PUBLIC_URL": None,
    "SERENADE_REMINDER_DAYS": 30,
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in CONTRACT_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def test_every_contract_variable_has_a_documented_field_with_its_default() -> None:
    settings = Settings()
    for variable, default in CONTRACT_VARIABLES.items():
        name = variable.removeprefix("SERENADE_").lower()
        field = Settings.model_fields[name]
        assert field.description, f"{variable} is undocumented"
        value = getattr(settings, name)
        assert value == default, f"{variable}: {value!r} != {default!r}"


def test_values_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERENADE_RETRY_BACKOFF", "0.5, 2,10")
    monkeypatch.setenv("SERENADE_API_PORT", "9001")
    monkeypatch.setenv("SERENADE_NATS_URL", "nats://a:1, nats://b:2")
    settings = Settings()
    assert settings.retry_backoff == (0.5, 2.0, 10.0)
    assert settings.api_port == 9001
    assert settings.require_nats_servers() == ["nats://a:1", "nats://b:2"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SERENADE_PROVIDER_FAILURE_RATE", "1.5"),
        ("SERENADE_RETRY_BACKOFF", "1,-2"),
        ("SERENADE_RETRY_BACKOFF", "soon"),
        ("SERENADE_MAX_ATTEMPTS", "0"),
        ("SERENADE_API_PORT", "70000"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert variable.removeprefix("SERENADE_").lower() in str(raised.value)


def test_storage_defaults_to_a_folder_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_storage_url == (tmp_path / "storage").as_uri()


def test_required_settings_name_the_missing_variable() -> None:
    settings = Settings()
    with pytest.raises(MissingSettingError, match="SERENADE_DATABASE_URL"):
        settings.require_database_url()
    with pytest.raises(MissingSettingError, match="SERENADE_JWT_SECRET"):
        settings.require_jwt_secret()
