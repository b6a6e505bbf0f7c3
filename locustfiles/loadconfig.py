"""Load settings for the Locust users: weights, think times, item counts, auth mode.

Drills tune the load through a JSON or YAML file named by `KUGELDRILL_LOAD_CONFIG`
(contracts §8); single knobs can also be overridden with `KUGELDRILL_<FIELD>` environment
variables (e.g. `KUGELDRILL_AUTH=jwt`), so a standalone `locust` run needs no file. A
wrong key or value is a ConfigError naming it, because a typo silently ignored would
make a drill load something other than what its author asked for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from kugeldrill.ground.errors import ConfigError

AUTH_MODES = ("api_key", "jwt")
CART_VARIANTS = ("sale", "cancel", "void", "return")


@dataclass
class LoadConfig:
    """Every knob of the load, with defaults that give a light mixed POS workload."""

    auth: str = "api_key"  # api_key (X-API-KEY + terminal_id) | jwt (terminal token)
    # User class weights (Locust picks classes in this ratio).
    cart_weight: int = 8
    terminal_weight: int = 1
    openclose_weight: int = 1
    # CartUser variant weights per iteration.
    variants: dict[str, int] = field(default_factory=lambda: {"sale": 85, "cancel": 5, "void": 5, "return": 5})
    items_min: int = 1
    items_max: int = 3
    quantity_max: int = 2
    # Think times (seconds) between iterations, and between item scans within a sale.
    cart_wait: tuple[float, float] = (0.1, 0.5)
    item_wait: tuple[float, float] = (0.0, 0.0)
    terminal_wait: tuple[float, float] = (0.2, 1.0)
    openclose_wait: tuple[float, float] = (0.5, 2.0)
    cash_amount: tuple[int, int] = (100, 5000)
    # Timeouts on every request (seconds): TCP connect, and each network read.
    connect_timeout: float = 3.0
    network_timeout: float = 10.0
    # Terminal pools: names of provision.json pools each user class draws from.
    cart_pool: str = "cart"
    cash_pool: str = "cash"
    openclose_pool: str = "openclose"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_FIELDS = {f.name: f for f in fields(LoadConfig)}


def _coerce(name: str, raw: Any, default: Any, source: str) -> Any:
    """Convert a file or environment value to the type of the field's default."""
    try:
        if isinstance(default, tuple):
            if isinstance(raw, str):
                raw = [p for p in raw.replace(",", " ").split() if p]
            if not isinstance(raw, (list, tuple)) or len(raw) != 2:
                raise ValueError("expected two numbers [min, max]")
            lo, hi = (type(default[0])(raw[0]), type(default[1])(raw[1]))
            if lo < 0 or hi < lo:
                raise ValueError(f"need 0 <= min <= max, got [{lo}, {hi}]")
            return (lo, hi)
        if isinstance(default, dict):
            if isinstance(raw, str):
                raw = json.loads(raw)
            if not isinstance(raw, Mapping):
                raise ValueError("expected a mapping")
            unknown = set(raw) - set(CART_VARIANTS)
            if unknown:
                raise ValueError(f"unknown variant(s) {sorted(unknown)}; known: {list(CART_VARIANTS)}")
            out = {k: int(raw.get(k, 0)) for k in CART_VARIANTS}
            if any(v < 0 for v in out.values()) or sum(out.values()) == 0:
                raise ValueError("weights must be >= 0 with at least one > 0")
            return out
        if isinstance(default, bool):
            return str(raw).lower() in ("1", "true", "yes", "on")
        if isinstance(default, (int, float)):
            value = type(default)(raw)
            if value < 0:
                raise ValueError("must be >= 0")
            return value
        return str(raw)
    except (TypeError, ValueError, json.JSONDecodeError) as exc:
        raise ConfigError(f"load config {source}: field {name!r}: bad value {raw!r}: {exc}") from None


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"load config file {path} does not exist (KUGELDRILL_LOAD_CONFIG)")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text or "{}")
    except Exception as exc:  # yaml.YAMLError / JSONDecodeError: both are user input errors
        raise ConfigError(f"load config file {path} cannot be parsed: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"load config file {path} must hold a mapping of settings")
    return data


def build_config(data: Mapping[str, Any], source: str = "(dict)") -> LoadConfig:
    """A LoadConfig from a mapping; unknown keys and bad values raise ConfigError."""
    unknown = set(data) - set(_FIELDS)
    if unknown:
        raise ConfigError(f"load config {source}: unknown setting(s) {sorted(unknown)}",
                          hint=f"known settings: {sorted(_FIELDS)}")
    cfg = LoadConfig()
    for name, raw in data.items():
        setattr(cfg, name, _coerce(name, raw, getattr(cfg, name), source))
    if cfg.auth not in AUTH_MODES:
        raise ConfigError(f"load config {source}: auth must be one of {AUTH_MODES}, got {cfg.auth!r}")
    if cfg.items_min < 1 or cfg.items_max < cfg.items_min:
        raise ConfigError(f"load config {source}: need 1 <= items_min <= items_max")
    if cfg.quantity_max < 1:
        raise ConfigError(f"load config {source}: quantity_max must be >= 1")
    if cfg.connect_timeout <= 0 or cfg.network_timeout <= 0:
        raise ConfigError(f"load config {source}: timeouts must be > 0 seconds")
    return cfg


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> LoadConfig:
    """File (argument or KUGELDRILL_LOAD_CONFIG), then KUGELDRILL_<FIELD> overrides."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    file = path or env.get("KUGELDRILL_LOAD_CONFIG")
    source = "(defaults)"
    if file:
        data = _read_file(Path(file))
        source = str(file)
    for name in _FIELDS:
        key = f"KUGELDRILL_{name.upper()}"
        if key in env:
            data[name] = env[key]
    return build_config(data, source)


WEIGHT_FIELDS = {"CartUser": "cart_weight", "TerminalUser": "terminal_weight", "OpenCloseUser": "openclose_weight"}


def config_for_users(config: Mapping[str, Any], users: Mapping[str, int]) -> dict[str, Any]:
    """The locustfile's config: a scenario's `load.config` plus class weights from its users.

    Locust spreads users over classes by weight, deterministically, so weights equal to
    the per-class counts with `-u` = their sum give exactly those counts. Validated here
    (ConfigError naming the field) so a bad value fails before anything starts.
    """
    cfg = dict(config)
    for cls, key in WEIGHT_FIELDS.items():
        cfg[key] = int(users.get(cls, 0))
    build_config(cfg, "scenario load.config")
    return cfg
