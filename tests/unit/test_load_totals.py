"""A transaction's figures as the load records them, from the real cart's answer and the stand-in's."""

from __future__ import annotations

from kugeldrill.locustfiles.totals import totals_of


def test_a_real_cart_answers_payment_amount_under_its_own_name() -> None:
    # Kugelpos' BaseTranPayment: payment_no, payment_code, payment_name, payment_amount (camelCase in answers)
    real = {"payments": [{"paymentNo": 1, "paymentCode": "01", "paymentName": "Cash", "paymentAmount": 261.0,
                          "depositAmount": 1000.0}]}
    assert totals_of(real)["payments"] == [{"payment_code": "01", "amount": 261.0}]


def test_the_stand_ins_payment_amount_is_read_too() -> None:
    standin = {"payments": [{"payment_code": "01", "amount": 261.0, "deposit_amount": 1000.0}]}
    assert totals_of(standin)["payments"] == [{"payment_code": "01", "amount": 261.0}]
