"""Settings: sizes, booleans, sources and their precedence, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepaas_host.settings import Settings, SettingsError, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100M", 100 << 20),
        ("100m", 100 << 20),
        ("100MB", 100 << 20),
        ("100MiB", 100 << 20),
        (" 512K ", 512 << 10),
        ("2G", 2 << 30),
        ("1T", 1 << 40),
        ("1.5M", 3 << 19),
        ("4096", 4096),
        (1234, 1234),
    ],
)
def test_sizes(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "M", "-1M", "10X", "1,5M"])
def test_a_bad_size_says_how_to_write_one(text: str) -> None:
    with pytest.raises(SettingsError, match=r"not a size.*100M"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", True),
        ("true", True),
        ("Yes", True),
        ("ON", True),
        ("0", False),
        ("false", False),
        ("no", False),
        (" off ", False),
    ],
)
def test_booleans_from_the_environment(text: str, expected: bool) -> None:
    assert Settings.load(environ={"DEEPAAS_HOST_WARM": text}).warm is expected


def test_a_bad_boolean_names_the_setting_and_its_source() -> None:
    with pytest.raises(SettingsError, match=r"'skip_broken' from environment.*'maybe'"):
        Settings.load(environ={"DEEPAAS_HOST_SKIP_BROKEN": "maybe"})


def test_environment_values_are_converted() -> None:
    settings = Settings.load(
        environ={
            "DEEPAAS_HOST_LISTEN_PORT": "8080",
            "DEEPAAS_HOST_MODELS": "demo, iris,",
            "DEEPAAS_HOST_MAX_BODY_SIZE": "1M",
            "DEEPAAS_HOST_SHUTDOWN_TIMEOUT": "2.5",
            "DEEPAAS_HOST_DATA_DIR": "~/somewhere",
            "DEEPAAS_HOST_BASE_PATH": "models/",
            "OTHER_PREFIX_WORKERS": "9",
        }
    )
    assert settings.listen_port == 8080
    assert settings.models == ("demo", "iris")
    assert settings.max_body_size == 1 << 20
    assert settings.shutdown_timeout == 2.5
    assert settings.data_dir == Path("~/somewhere").expanduser()
    assert settings.base_path == "/models"
    assert settings.workers == 1


def test_toml_file(tmp_path: Path) -> None:
    config = tmp_path / "host.toml"
    config.write_text(
        'listen_port = 8081\nmodels = ["demo"]\nworkers = 3\nmax_body_size = "50M"\n'
        'warm = false\nbase-path = "/api/"\n'
    )
    settings = Settings.load(environ={}, config_file=config)
    assert settings.listen_port == 8081
    assert settings.models == ("demo",)
    assert settings.workers == 3
    assert settings.max_body_size == 50 << 20
    assert settings.warm is False
    assert settings.base_path == "/api"


def test_flags_beat_the_environment_which_beats_the_file(tmp_path: Path) -> None:
    config = tmp_path / "host.toml"
    config.write_text("workers = 3\nqueue_size = 7\ntrain_workers = 2\n")
    environ = {"DEEPAAS_HOST_WORKERS": "4", "DEEPAAS_HOST_QUEUE_SIZE": "8"}
    settings = Settings.load(
        {"workers": 5, "queue_size": None}, environ=environ, config_file=config
    )
    assert settings.workers == 5  # flag
    assert settings.queue_size == 8  # environment (the flag was not given)
    assert settings.train_workers == 2  # file


def test_the_config_file_can_come_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "host.toml"
    config.write_text("queue_size = 9\n")
    assert Settings.load(environ={"DEEPAAS_HOST_CONFIG": str(config)}).queue_size == 9


def test_unknown_settings_are_errors(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"unknown setting 'wrokers' in environment"):
        Settings.load(environ={"DEEPAAS_HOST_WROKERS": "2"})
    config = tmp_path / "host.toml"
    config.write_text("port = 80\n")
    with pytest.raises(SettingsError, match=rf"unknown setting 'port' in {config}"):
        Settings.load(environ={}, config_file=config)
    with pytest.raises(SettingsError, match=r"unknown setting 'nope' in flags"):
        Settings.load({"nope": 1}, environ={})


def test_unreadable_or_invalid_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read config file"):
        Settings.load(environ={}, config_file=tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("workers = \n")
    with pytest.raises(SettingsError, match="is not valid TOML"):
        Settings.load(environ={}, config_file=broken)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DEEPAAS_HOST_WORKERS": "two"}, "'workers' from environment"),
        ({"DEEPAAS_HOST_WORKERS": "0"}, "workers must be at least 1"),
        ({"DEEPAAS_HOST_TRAIN_WORKERS": "-1"}, "train_workers must be at least 1"),
        ({"DEEPAAS_HOST_LISTEN_PORT": "70000"}, "listen_port must be between"),
        ({"DEEPAAS_HOST_LOG_FORMAT": "xml"}, "log_format must be"),
        ({"DEEPAAS_HOST_MAX_BODY_SIZE": "0"}, "max_body_size must be positive"),
        ({"DEEPAAS_HOST_MAX_BODY_SIZE": "big"}, "'max_body_size' from environment"),
        ({"DEEPAAS_HOST_SHUTDOWN_TIMEOUT": "soon"}, "'shutdown_timeout' from environment"),
    ],
)
def test_invalid_values_are_errors(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.load(environ=environ)


def test_base_path_is_normalized() -> None:
    assert Settings(base_path="/").base_path == ""
    assert Settings(base_path=" models ").base_path == "/models"
    assert Settings(base_path="/a/b/").base_path == "/a/b"


def test_the_database_defaults_to_a_file_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.db_url == f"sqlite+aiosqlite:///{tmp_path / 'deepaas-host.db'}"
    assert Settings(data_dir=tmp_path, database_url="postgresql+asyncpg://db/x").db_url == (
        "postgresql+asyncpg://db/x"
    )


@pytest.mark.parametrize(("value", "shown"), [("2.5", "2.5"), ("true", "True")])
def test_a_number_setting_in_toml_must_be_a_whole_number(
    tmp_path: Path, value: str, shown: str
) -> None:
    config = tmp_path / "host.toml"
    config.write_text(f"workers = {value}\n")
    with pytest.raises(SettingsError, match=rf"'workers' from {config}: not an integer: {shown}"):
        Settings.load(environ={}, config_file=config)
    config.write_text("workers = 2.0\n")
    assert Settings.load(environ={}, config_file=config).workers == 2
