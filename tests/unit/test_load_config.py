"""Load config: defaults, files, environment overrides and specific errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kugeldrill.ground.errors import ConfigError
from kugeldrill.locustfiles.loadconfig import LoadConfig, load_config


def test_defaults_without_file() -> None:
    cfg = load_config(environ={})
    assert cfg == LoadConfig()
    assert cfg.auth == "api_key" and cfg.variants["sale"] > 0


def test_yaml_file_then_environment_override(tmp_path: Path) -> None:
    f = tmp_path / "load.yaml"
    f.write_text("auth: jwt\nitems_max: 5\ncart_wait: [0, 0.2]\nvariants: {sale: 1, void: 1}\n")
    cfg = load_config(environ={"KUGELDRILL_LOAD_CONFIG": str(f), "KUGELDRILL_ITEMS_MAX": "7",
                               "KUGELDRILL_CART_WAIT": "0.1,0.3"})
    assert cfg.auth == "jwt" and cfg.items_max == 7 and cfg.cart_wait == (0.1, 0.3)
    assert cfg.variants == {"sale": 1, "cancel": 0, "void": 1, "return": 0}


def test_json_file(tmp_path: Path) -> None:
    f = tmp_path / "load.json"
    f.write_text('{"cart_weight": 3, "network_timeout": 2.5}')
    cfg = load_config(f, environ={})
    assert cfg.cart_weight == 3 and cfg.network_timeout == 2.5


@pytest.mark.parametrize(
    "text, message",
    [
        ("auth: oauth\n", "auth must be one of"),
        ("itemz: 3\n", "unknown setting"),
        ("items_min: 4\nitems_max: 2\n", "items_min <= items_max"),
        ("cart_wait: [2, 1]\n", "cart_wait"),
        ("variants: {sale: 1, refund: 2}\n", "unknown variant"),
        ("cart_weight: lots\n", "cart_weight"),
        ("- a list\n", "mapping"),
        ("a: [unclosed\n", "cannot be parsed"),
    ],
)
def test_bad_values_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "load.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(f, environ={})


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(environ={"KUGELDRILL_LOAD_CONFIG": str(tmp_path / "none.yaml")})


def test_example_file_is_valid_and_equals_the_defaults() -> None:
    example = Path(__file__).resolve().parents[2] / "locustfiles" / "load.example.yaml"
    assert load_config(example, environ={}) == LoadConfig()
