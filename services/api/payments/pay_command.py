"""``serenade pay ORDER_ID`` (``SERENADE_PAYMENTS=local``): pays the order's awaiting payment
from the shell, as the checkout page's button does. It needs only the API's address and the
JWT secret (the development one in the data directory will do): it reads the order as
service_role, then posts to the payment's ``/pay/{payment_id}``."""

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

from shared.auth import issue_token
from shared.db import Role

__all__ = ["PayError", "pay_order"]

_TIMEOUT_SECONDS = 15.0


class PayError(Exception):
    """The order could not be paid; the message says why, for a person."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None  # the 303 back to the page is the answer itself


def _call(request: urllib.request.Request) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=_TIMEOUT_SECONDS) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        raise PayError(f"cannot reach the API at {request.full_url}: {error}") from error


def _detail(body: bytes) -> str:
    try:
        return str(json.loads(body).get("detail", body.decode(errors="replace")))
    except (ValueError, AttributeError):
        return body.decode(errors="replace")[:200]


def pay_order(api: str, jwt_secret: str, order_id: uuid.UUID) -> str:
    """Pay the order's awaiting payment; returns a line saying what was paid."""
    base = api.rstrip("/")
    token = issue_token(jwt_secret, role=Role.SERVICE, ttl_seconds=300)
    status, body = _call(
        urllib.request.Request(  # noqa: S310 - the operator's own API address
            f"{base}/v1/orders/{order_id}", headers={"Authorization": f"Bearer {token}"}
        )
    )
    if status != 200:
        raise PayError(f"order {order_id}: {status} {_detail(body)}")
    order = json.loads(body)
    awaiting = [p for p in order.get("payments") or [] if p["status"] == "awaiting"]
    if not awaiting:
        raise PayError(
            f"order {order_id} has no payment awaiting"
            + ("" if order.get("payment") else " (are payments on? SERENADE_PAYMENTS=local)")
        )
    payment = awaiting[-1]
    status, body = _call(
        urllib.request.Request(f"{base}/pay/{payment['id']}", method="POST")  # noqa: S310
    )
    if status not in (200, 303):
        raise PayError(f"payment {payment['id']}: {status} {_detail(body)}")
    amount = f"{payment['amount'] // 100}.{payment['amount'] % 100:02d}"
    return f"paid {amount} {payment['currency'].upper()} for order {order_id} ({payment['kind']})"
