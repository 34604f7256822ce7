"""Config loading: substitution, environment overrides, one-line errors."""

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from blobsvc.config import ConfigError, load
from blobsvc.storage.settings import DriverSettings, build_settings


def write(tmp_path, text):
    path = tmp_path / "blobsvc.yaml"
    path.write_text(text)
    return str(path)


def test_no_file_is_filesystem_under_data_on_loopback_8080():
    config = load(None, environ={})
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8080)
    assert config.storage.driver == "filesystem"
    assert config.storage.params == {"root": "./data", "fsync": True,
                                     "file_mode": 0o600, "dir_mode": 0o700, "reap_interval": 60.0}


def test_variables_are_substituted_with_their_yaml_type(tmp_path):
    path = write(tmp_path, "server:\n  port: ${PORT}\n  host: ${HOST:-127.0.0.2}\n")
    config = load(path, environ={"PORT": "9001"})
    assert config.server.port == 9001
    assert config.server.host == "127.0.0.2"


def test_substitution_inside_a_longer_string(tmp_path):
    path = write(tmp_path, "storage:\n  driver: filesystem\n  root: ${BASE}/blobs\n")
    assert load(path, environ={"BASE": "/srv"}).storage.params["root"] == "/srv/blobs"


def test_missing_variable_names_the_key(tmp_path):
    path = write(tmp_path, "server:\n  port: ${NOPE}\n")
    with pytest.raises(ConfigError, match=r"server\.port uses \$\{NOPE\}"):
        load(path, environ={})


def test_environment_overrides_single_settings(tmp_path):
    path = write(tmp_path, "server:\n  port: 1234\n")
    config = load(path, environ={"BLOBSVC_SERVER_PORT": "4321", "BLOBSVC_STORAGE_ROOT": "/d",
                                 "BLOBSVC_SERVER_MAX_OBJECT_SIZE": "10"})
    assert config.server.port == 4321
    assert config.server.max_object_size == 10
    assert config.storage.params["root"] == "/d"


@pytest.mark.parametrize("text, key", [
    ("server:\n  prot: 1\n", "server.prot"),
    ("serve:\n  port: 1\n", "'serve'"),
    ("server:\n  port: eighty\n", "server.port"),
    ("server:\n  threads: 0\n", "server.threads"),
    ("server:\n  port: true\n", "server.port"),
    ("storage:\n  driver: filesystem\n  fsync: 1\n", "storage.fsync"),
    ("storage:\n  driver: filesystem\n  fsync: false\n", "storage.root"),
    ("storage:\n  driver: memory\n  root: /x\n", "storage.root"),
    ("storage:\n  driver: ftp\n", "storage.driver"),
    ("log:\n  level: loud\n", "log.level"),
    ("- a\n- b\n", "top level"),
    ("server: [\n", "not valid YAML"),
])
def test_bad_config_is_refused_naming_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, text), environ={})
    assert key in str(error.value)
    assert "\n" not in str(error.value)


def test_example_configs_are_valid():
    config_dir = Path(__file__).resolve().parent.parent / "config"
    for name in ("blobsvc.yaml", "memory.yaml"):
        load(str(config_dir / name), environ={})


@pytest.mark.parametrize("storage,message", [
    ({"driver": "filesystem", "root": "d", "file_mode": "0666"}, "storage.file_mode"),
    ({"driver": "filesystem", "root": "d", "dir_mode": 640}, "storage.dir_mode"),
    ({"driver": "swift", "auth_url": "http://127.0.0.1:1/auth/v1.0", "user": "u", "key": "k",
      "segment_size": 0}, "storage.segment_size"),
    ({"driver": "swift", "auth_url": "http://127.0.0.1:1/auth/v1.0", "user": "u", "key": "k",
      "timeout": -1}, "storage.timeout"),
    ({"driver": "swift", "auth_url": "http://127.0.0.1:1/auth/v1.0", "user": "u", "key": "k",
      "max_backoff": -0.5}, "storage.max_backoff"),
])
def test_driver_setting_out_of_range_is_a_config_error(tmp_path, storage, message):
    """check-config runs the driver's own range checks: a value it would
    accept must never crash ``serve`` later."""
    path = write(tmp_path, yaml.safe_dump({"storage": storage}))
    with pytest.raises(ConfigError, match=message):
        load(path, environ={})


@dataclass(frozen=True)
class ExampleSettings(DriverSettings):
    name: str
    grace: float | None = None
    mode: int | str = 0o600

    def validate(self) -> None:
        if self.grace is not None and self.grace < 0:
            raise ValueError("storage.grace must not be negative")


def test_settings_types_come_from_the_annotations():
    """``float | None`` and unions work: types are resolved, not matched as text."""
    settings = build_settings(ExampleSettings, {"name": "n", "grace": 2}, "example")
    assert settings == ExampleSettings(name="n", grace=2.0)
    assert isinstance(settings.grace, float)
    assert build_settings(ExampleSettings, {"name": "n", "grace": None, "mode": "0640"},
                          "example").mode == "0640"


@pytest.mark.parametrize("params, message", [
    ({"name": "n", "grace": "soon"}, "storage.grace must be float or int or null, not 'soon'"),
    ({"name": "n", "grace": True}, "storage.grace must be float or int or null, not True"),
    ({"name": "n", "mode": 1.5}, "storage.mode must be int or str, not 1.5"),
    ({"grace": 1.0}, "storage.name is required by driver example"),
    ({"name": "n", "other": 1}, "unknown key storage.other for driver example"),
    ({"name": "n", "grace": -1}, "storage.grace must not be negative"),
])
def test_settings_are_refused_naming_the_key(params, message):
    with pytest.raises(ValueError) as error:
        build_settings(ExampleSettings, params, "example")
    assert str(error.value) == message
