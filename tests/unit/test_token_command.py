"""``serenade token`` and the token rules behind it."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from click.testing import CliRunner

from services.cli import main
from shared.auth import AuthError, caller_from_authorization, decode_token, issue_token
from shared.db import Role

SECRET = "unit-test-secret-" + "s" * 64


def _run(*args: str, secret: str | None = SECRET) -> tuple[int, str]:
    env = {"SERENADE_JWT_SECRET": secret} if secret else {"SERENADE_DATA_DIR": "/nonexistent"}
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


def test_token_for_a_user_is_a_supabase_shaped_hs256_jwt() -> None:
    user = uuid.uuid4()
    code, output = _run("token", "--user", str(user), "--ttl", "120")
    assert code == 0, output
    token = output.strip()
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="authenticated")
    assert claims["sub"] == str(user)
    assert claims["role"] == "authenticated"
    assert 110 <= claims["exp"] - time.time() <= 121
    assert decode_token(SECRET, token).user_id == user


def test_service_role_token_needs_no_user_and_no_audience() -> None:
    code, output = _run("token", "--role", "service_role")
    assert code == 0, output
    caller = decode_token(SECRET, output.strip())
    assert caller.role is Role.SERVICE


def test_authenticated_token_without_user_is_a_usage_error() -> None:
    code, output = _run("token")
    assert code == 2
    assert "--user is required" in output


def test_token_without_any_secret_says_how_to_get_one() -> None:
    code, output = _run("token", "--role", "service_role", secret=None)
    assert code == 1
    assert "SERENADE_JWT_SECRET is not set" in output


def _forge(claims: dict[str, object], *, key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


_FUTURE = 2_000_000_000
_USER = {"role": "authenticated", "sub": str(uuid.uuid4()), "aud": "authenticated", "exp": _FUTURE}
_SERVICE = {"role": "service_role", "exp": _FUTURE}
_REFUSED = {
    "HS512": _forge(_USER, key=SECRET * 2, algorithm="HS512"),
    "alg none": jwt.encode(_SERVICE, None, algorithm="none"),
    "wrong secret": _forge(_SERVICE, key="x" * 64),
    "expired": _forge(_SERVICE | {"exp": 1}),
    "no exp": _forge({"role": "service_role"}),
    "no aud": _forge({k: v for k, v in _USER.items() if k != "aud"}),
    "wrong aud": _forge(_USER | {"aud": "other"}),
    "sub not a uuid": _forge(_USER | {"sub": "not-a-uuid"}),
    "unknown role": _forge(_SERVICE | {"role": "postgres"}),
    "malformed": "not.a.jwt",
}


@pytest.mark.parametrize("case", sorted(_REFUSED))
def test_unacceptable_tokens_are_refused(case: str) -> None:
    with pytest.raises(AuthError):
        decode_token(SECRET, _REFUSED[case])


def test_authorization_header_scheme_is_case_insensitive_and_absence_means_anon() -> None:
    token = issue_token(SECRET, role=Role.SERVICE)
    assert caller_from_authorization(SECRET, f"bEaReR {token}").role is Role.SERVICE
    assert caller_from_authorization(SECRET, None).role is Role.ANON
    with pytest.raises(AuthError):
        caller_from_authorization(SECRET, f"Basic {token}")
