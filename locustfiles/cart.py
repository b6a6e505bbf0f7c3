"""CartUser: full sales on a leased cart terminal, with cancel, void and return variants.

A sale is create cart -> 1..N items from the provisioned master -> subtotal -> cash
payment rounded up to the next 1000 (so there is change) -> bill. The effecting call
is bill (cancel for a cancelled cart, the transactions API for void and return); every
earlier step failing makes the operation `fail`, see locustfiles/api.py.

Void and return act on one of this terminal's own earlier ok sales, each at most once
(Kugelpos rejects a second void/return of the same transaction).
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import gevent
from locust import between, task

from kugeldrill.locustfiles.api import StepError, tender_for
from kugeldrill.locustfiles.base import PosUser
from kugeldrill.locustfiles.totals import read_sale, record


class CartUser(PosUser):
    pool_attr = "cart_pool"
    wait_time = between(0.1, 0.5)

    @task
    def iteration(self) -> None:
        if not self.ready():
            return
        names, cum = self._variant_table()
        variant = random.choices(names, cum_weights=cum)[0]
        assert self.term is not None
        if variant in ("void", "return") and self.term.sales:
            self.void_or_return(variant)
        elif variant == "cancel":
            self.sale(cancel=True)
        else:
            self.sale()

    def _variant_table(self) -> tuple[list[str], list[float]]:
        """Variant names and cumulative weights, built once per user (not per iteration)."""
        table = self.__dict__.get("_variants")
        if table is None:
            variants = self.rt.settings.config.variants
            names = list(variants)
            table = self._variants = (names, list(itertools.accumulate(variants[n] for n in names)))
        return table

    def _choose_items(self) -> list[dict[str, Any]]:
        cfg = self.rt.settings.config
        master = self.rt.settings.provision["items"]
        count = random.randint(cfg.items_min, cfg.items_max)
        return [{"item_code": random.choice(master)["item_code"], "quantity": random.randint(1, cfg.quantity_max)}
                for _ in range(count)]

    def _fill_cart(self, items: list[dict[str, Any]]) -> str:
        assert self.api is not None
        lo, hi = self.rt.settings.config.item_wait
        cart_id = self.api.create_cart(self.user_id)
        for item in items:
            if hi > 0:
                gevent.sleep(random.uniform(lo, hi))
            self.api.add_item(cart_id, item["item_code"], item["quantity"])
        return cart_id

    def sale(self, cancel: bool = False) -> None:
        """A paid sale (or, with cancel=True, a cart cancelled after its items).

        The subtotal's figures go into the history before the bill, so a sale whose bill
        answer is lost (`info`) still says exactly what it would have moved; the bill's
        answer then replaces them (locustfiles/totals.py: unknown figures are None and named
        in `missing`).
        """
        assert self.api is not None and self.term is not None
        items = self._choose_items()
        with self.operation("cancel" if cancel else "sale", items=items) as op:
            cart_id = self._fill_cart(items)
            op.value["cart_id"] = cart_id
            if cancel:
                data = self.api.cancel(cart_id)
                record(op.value, read_sale(data))
                op.ok(receipt_no=data.get("receiptNo"), business_date=data.get("businessDate"))
                return
            sub = self.api.subtotal(cart_id)
            balance = sub.get("balanceAmount")
            if not isinstance(balance, (int, float)):
                raise StepError("fail", "POST /api/v1/carts/[cart_id]/subtotal: answer without balanceAmount")
            record(op.value, read_sale(sub, numbered=False))
            tender = tender_for(int(balance))
            self.api.pay(cart_id, "01", tender)
            op.value["payments"] = [{"payment_code": "01", "amount": float(balance)}]
            data = self.api.bill(cart_id)
            record(op.value, read_sale(data))
            op.ok(receipt_no=data.get("receiptNo"), deposit=tender, change=data.get("changeAmount"),
                  business_date=data.get("businessDate"))
            if op.value.get("transaction_no") is not None and op.value.get("amount") is not None:
                self.term.sales.append({k: op.value[k] for k in ("transaction_no", *SALE_FIGURES) if k in op.value})

    def void_or_return(self, kind: str) -> None:
        """Void or return one earlier own sale of this terminal (paid in cash, code 01).

        The operation carries the original sale's figures (Kugelpos copies them into the
        void or return), replaced by the answer's own when it comes back — except the
        amount without tax, which a transaction answer does not give (locustfiles/totals.py).
        """
        assert self.api is not None and self.term is not None
        original = self.term.sales.pop(random.randrange(len(self.term.sales)))
        payments = [{"payment_code": "01", "amount": original["amount"]}]
        figures = {k: original[k] for k in SALE_FIGURES if k in original}
        with self.operation(kind, original_transaction_no=original["transaction_no"], **figures) as op:
            call = self.api.void if kind == "void" else self.api.return_
            data = call(int(original["transaction_no"]), payments)
            record(op.value, read_sale(data, cart=False))
            op.ok(receipt_no=data.get("receiptNo"), business_date=data.get("businessDate"))


#: The figures of a sale that a void or return of it moves back (locustfiles/totals.py).
SALE_FIGURES = ("amount", "amount_without_tax", "tax", "quantity", "taxes", "payments", "items")
