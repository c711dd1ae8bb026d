"""Payments: the webhook, the local checkout page and the payments worker."""
