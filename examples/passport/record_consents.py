"""Record the loan applicants' consents in the supplier's ledger (the buyer's story, step 2).

Each applicant gave separate consent (PIPL Art. 23) to credit assessment and risk control by the bank,
except a few: every 50th applicant never consented and every 97th later withdrew. Subjects are stored
under keyed pseudonyms only. Usage: python record_consents.py LEDGER.db APPLICANTS.csv BANK
"""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime

from piguard.ledger import Ledger, load_key, pseudonym

CATEGORIES = ["PERSON", "PHONE_NUMBER", "CN_RESIDENT_ID", "GENDER", "INCOME", "CREDIT_RECORD"]


def main(ledger_path: str, applicants: str, bank: str) -> None:
    led = Ledger.open(ledger_path)
    key = load_key(led.url, create=True)
    with open(applicants, encoding="utf-8") as fh:
        ids = [row["身份证号"] for row in csv.DictReader(fh)]
    now = datetime.now(UTC)
    rows = [
        {
            "id": f"consent-{i:05d}",
            "subject_id": pseudonym(raw, key),
            "kind": "separate",
            "purposes": ["credit_assessment", "risk_control"],
            "recipients": [bank],
            "categories": CATEGORIES,
            "policy_version": "v3",
            "channel": "app",
            "given_at": now,
        }
        for i, raw in enumerate(ids)
        if i % 50 != 49
    ]
    n = led.bulk_import_consents(rows)
    withdrawn = [r["id"] for i, r in enumerate(rows) if i % 97 == 96]
    for cid in withdrawn:
        led.withdraw_consent(cid)
    led.close()
    print(f"{n} consents recorded for {len(ids)} applicants; {len(withdrawn)} withdrawn")


if __name__ == "__main__":
    main(*sys.argv[1:4])
