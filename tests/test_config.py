"""The config file: the embedded default, and bad files refused with line and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootvol.config import CloneMethod, load_settings, resolve_config_path
from bootvol.errors import ConfigError

GOOD = """\
data_dir = "state"
image_store = "images"
clone_method = "qcow2"
[cache]
thres_avl_size_perc_start = 10
[[cluster]]
name = "c1"
version = "9.14.1"
[[svm]]
name = "s1"
cluster = "c1"
vstorage = true
[[flexvol]]
name = "images"
svm = "s1"
path = "fv/images"
volumes = false
[[flexvol]]
name = "vol_a"
svm = "s1"
path = "/mnt/vol_a"
"""


def test_default_config_is_written_once_and_loads(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("BOOTVOL_CONFIG", raising=False)
    path = resolve_config_path(config=None, data_dir=tmp_path / "data")
    assert path == tmp_path / "data" / "bootvol.toml"
    settings = load_settings(path)
    assert [f.name for f in settings.flexvol] == ["images", "vol_a", "vol_b"]
    assert settings.cache.thres_avl_size_perc_start == 20
    assert settings.cache.thres_avl_size_perc_stop == 60
    assert settings.cache.expiry_thres_minutes == 720
    assert settings.flexvol[1].path == (tmp_path / "data" / "flexvols" / "vol_a").resolve()
    path.write_text(path.read_text().replace('clone_method = "auto"', 'clone_method = "copy"'))
    assert resolve_config_path(config=None, data_dir=tmp_path / "data") == path
    assert load_settings(path).clone_method is CloneMethod.COPY  # not overwritten


def test_env_var_names_the_config(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "elsewhere.toml"
    monkeypatch.setenv("BOOTVOL_CONFIG", str(config))
    assert resolve_config_path(config=None, data_dir=None) == config


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    config = tmp_path / "b.toml"
    config.write_text(GOOD)
    settings = load_settings(config)
    assert settings.data_dir == tmp_path / "state"
    assert settings.flexvol[0].path == tmp_path / "fv" / "images"
    assert settings.flexvol[0].volumes is False
    assert settings.cache.thres_avl_size_perc_start == 10


@pytest.mark.parametrize(
    ("change", "line", "reason"),
    [
        (
            ('svm = "s1"\npath = "/mnt/vol_a"', 'svm = "nope"\npath = "/mnt/vol_a"'),
            None,
            "names unknown svm 'nope'",
        ),
        (('clone_method = "qcow2"', 'clone_method = "fast"'), 3, "clone_method"),
        (
            ("thres_avl_size_perc_start = 10", "thres_avl_size_perc_start = 70"),
            4,
            "lower than thres_avl_size_perc_stop",
        ),
        (('version = "9.14.1"', 'version = "nine"'), 8, "cluster.0.version"),
        (('image_store = "images"', 'image_store = "vol_z"'), None, "vol_z"),
        (("vstorage = true", "vstorage = true\ncolour = 1"), 13, "colour"),
        (('name = "vol_a"', 'name = "vol a"'), 19, "flexvol.1.name"),
        (("[[cluster]]", "[[cluster]"), 6, "line 6"),
        (
            (
                "[[cluster]]",
                '[catalog]\nblock_storage = "ftp://cinder/v3/{project_id}"\n[[cluster]]',
            ),
            7,
            "not an http:// or https:// URL",
        ),
        (
            (
                "[[cluster]]",
                '[catalog]\nblock_storage = "http://cinder/v3/{tenant_id}"\n[[cluster]]',
            ),
            7,
            "only the placeholder {project_id}",
        ),
    ],
)
def test_bad_config_is_refused_with_line_and_reason(
    tmp_path: Path, change: tuple[str, str], line: int | None, reason: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(GOOD.replace(*change))
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    message = refused.value.message
    assert str(config) in message
    assert reason in message
    if line is not None:
        assert f"line {line}" in message


def test_an_external_block_storage_url_is_optional(tmp_path: Path) -> None:
    config = tmp_path / "b.toml"
    config.write_text(GOOD)
    assert load_settings(config).catalog.block_storage is None
    url = "https://cinder.example:8776/v3/{project_id}"
    with_catalog = f'[catalog]\nblock_storage = "{url}"\n[[cluster]]'
    config.write_text(GOOD.replace("[[cluster]]", with_catalog, 1))
    assert load_settings(config).catalog.block_storage == url


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.toml")
