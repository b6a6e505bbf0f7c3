"""Kugelpos' built-in TAX_MASTER (kugel_common/config/settings_tax.py) and its arithmetic.

Codes: 00 exempt, 01 external 10 %, 02 internal 10 %, 11 external 8 %, 12 internal 8 %.
External tax is added on top of the amount; internal tax is contained in it. The
stand-in rounds every tax amount down to whole yen (our reading of Kugelpos' default).
"""

from __future__ import annotations

import math
from typing import Any

TAX_MASTER: list[dict[str, Any]] = [
    {"tax_code": "00", "tax_type": "Exempt", "tax_name": "非課税", "rate": 0.0, "round_digit": 0, "round_method": "Floor"},
    {"tax_code": "01", "tax_type": "External", "tax_name": "外税10%", "rate": 10.0, "round_digit": 0, "round_method": "Floor"},
    {"tax_code": "02", "tax_type": "Internal", "tax_name": "内税10%", "rate": 10.0, "round_digit": 0, "round_method": "Floor"},
    {"tax_code": "11", "tax_type": "External", "tax_name": "外税 8%", "rate": 8.0, "round_digit": 0, "round_method": "Floor"},
    {"tax_code": "12", "tax_type": "Internal", "tax_name": "内税 8%", "rate": 8.0, "round_digit": 0, "round_method": "Floor"},
]
_BY_CODE = {t["tax_code"]: t for t in TAX_MASTER}


def tax_of(code: str) -> dict[str, Any] | None:
    return _BY_CODE.get(code)


def tax_amount(code: str, target_amount: float) -> float:
    """Tax on `target_amount` for `code` (external: on top; internal: contained)."""
    tax = _BY_CODE.get(code)
    if tax is None or tax["tax_type"] == "Exempt" or tax["rate"] == 0:
        return 0.0
    rate = tax["rate"]
    raw = target_amount * rate / 100 if tax["tax_type"] == "External" else target_amount * rate / (100 + rate)
    return float(math.floor(raw + 1e-9))
