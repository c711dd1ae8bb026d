"""Payments: the ledger (a payment's state changes) and the providers (local, stripe). The
rules every service needs (no generation unless paid, refund when all failed) are in
``shared.payment_rules``, which the variant lifecycle imports."""
