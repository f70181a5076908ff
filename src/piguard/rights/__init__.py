"""Serve: the rights of the people whose data it is (PIPL Art. 15, 24, 44-50, 65; 2019 method C6).

Requests (access, copy, correction, deletion, consent withdrawal, explanation, opt-out of personalised
recommendation, account cancellation, complaint) are verified by a one-time code, timed in Chinese working
days, carried out over the stores registered in ``stores.yaml`` and proven by receipts signed with the
controller's Ed25519 key. Every state change is in the ledger's hash-chained audit log.

```python
from piguard.ledger import Ledger, load_key
from piguard.rights import OutboxDelivery, RightsService, load_stores

led = Ledger.open(url)
svc = RightsService(led, load_key(url), load_stores("stores.yaml"), OutboxDelivery("outbox"), signing_key)
rid = svc.submit("deletion", {"kind": "phone", "value": "13812345678"})["id"]
token = svc.verify(rid, code)["token"]
```
"""

from __future__ import annotations

from piguard.rights.catalog import (
    REQUEST_TYPES,
    Reason,
    complaint_catalog,
    complaint_routes,
    refusal_reasons,
)
from piguard.rights.deadlines import Due, add_working_days, working_days_between
from piguard.rights.identity import (
    Delivery,
    DeliveryError,
    IdentityError,
    OutboxDelivery,
    SmtpDelivery,
    canonical,
)
from piguard.rights.receipts import ReceiptError, sign_receipt, verify_receipt
from piguard.rights.service import ROLES, Limits, RightsError, RightsService, Staff
from piguard.rights.stores import Store, StoresError, load_stores, parse_stores

__all__ = [
    "REQUEST_TYPES",
    "ROLES",
    "Delivery",
    "DeliveryError",
    "Due",
    "IdentityError",
    "Limits",
    "OutboxDelivery",
    "Reason",
    "ReceiptError",
    "RightsError",
    "RightsService",
    "SmtpDelivery",
    "Staff",
    "Store",
    "StoresError",
    "add_working_days",
    "canonical",
    "complaint_catalog",
    "complaint_routes",
    "load_stores",
    "parse_stores",
    "refusal_reasons",
    "sign_receipt",
    "verify_receipt",
    "working_days_between",
]
