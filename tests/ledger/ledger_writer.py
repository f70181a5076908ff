"""A ledger writer process for the concurrency and crash tests: records COUNT consents (0: forever)."""

from __future__ import annotations

import hashlib
import sys

from piguard.ledger import Ledger


def main() -> None:
    url, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    led = Ledger.open(url)
    print("ready", flush=True)
    i = 0
    while count == 0 or i < count:
        led.record_consent(
            subject_id="s_" + hashlib.sha1(f"{prefix}_{i % 50}".encode()).hexdigest(),
            kind="separate",
            purposes=["data_supply"],
            categories=["PERSON", "CREDIT_RECORD"],
            recipients=["某银行"],
            consent_id=f"{prefix}-{i}",
        )
        i += 1


if __name__ == "__main__":
    main()
