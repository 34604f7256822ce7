"""S3 key pairs from the auth settings and the environment."""

from __future__ import annotations

import time
from typing import Any

import pytest
from test_s3_sigv4 import boto_wire

from blobsvc.auth import ENV_ACCESS_KEY, ENV_SECRET_KEY, AuthSettings, Grant, environment_user, parse_settings
from blobsvc.s3.credentials import s3_key_pairs
from blobsvc.s3.sigv4 import S3AuthError, verify
from blobsvc.secrets import hash_secret

USERS = {
    "reader": {"password": "reader-password", "access": "read"},
    "builds": {"password": "builds-password", "access": "write", "prefix": "builds"},
    "hashed": {"password": hash_secret("hashed-password", iterations=100_000), "access": "write"},
}
ENV = {ENV_ACCESS_KEY: "ci-uploader", ENV_SECRET_KEY: "ci-uploader-secret-0123"}


def settings(users: dict[str, Any] | None = None, environ: dict[str, str] | None = None
             ) -> AuthSettings:
    return parse_settings({"users": USERS if users is None else users}, environ or {})


def test_every_plain_password_user_is_a_key_pair_with_its_grant() -> None:
    pairs = s3_key_pairs(settings())
    assert pairs == {
        "reader": Grant(name="reader", secret="reader-password", access="read"),
        "builds": Grant(name="builds", secret="builds-password", access="write", prefix="builds/"),
    }


def test_a_hashed_password_cannot_sign_and_is_no_key_pair() -> None:
    assert "hashed" not in s3_key_pairs(settings())


def test_no_users_and_no_environment_mean_no_key_pairs() -> None:
    assert s3_key_pairs(parse_settings(None, {})) == {}
    assert s3_key_pairs(parse_settings(None, {"BLOBSVC_TOKEN": "a-token-of-some-length"})) == {}


def test_the_environment_adds_one_write_user() -> None:
    pairs = s3_key_pairs(settings(environ=ENV))
    assert pairs["ci-uploader"] == Grant(name="ci-uploader", secret="ci-uploader-secret-0123", access="write")
    assert set(pairs) == {"reader", "builds", "ci-uploader"}
    alone = parse_settings(None, ENV)
    assert alone.enabled and alone.anonymous == "none"  # as BLOBSVC_TOKEN alone: auth on
    assert s3_key_pairs(alone) == {"ci-uploader": pairs["ci-uploader"]}


def test_the_environment_user_may_already_be_among_the_users() -> None:
    """Whether the config lists it or not, the environment user is the same key pair."""
    env_user = {"ci-uploader": {"password": ENV[ENV_SECRET_KEY], "access": "write"}}
    assert s3_key_pairs(settings(env_user, ENV)) == s3_key_pairs(parse_settings(None, ENV))


def test_the_environment_user_may_not_shadow_another_user() -> None:
    with pytest.raises(ValueError, match=ENV_ACCESS_KEY):
        settings(environ={ENV_ACCESS_KEY: "reader", ENV_SECRET_KEY: "another-secret-0123456"})


@pytest.mark.parametrize("environ, names", [
    ({ENV_ACCESS_KEY: "ci-uploader"}, ENV_SECRET_KEY),
    ({ENV_SECRET_KEY: "ci-uploader-secret-0123"}, ENV_ACCESS_KEY),
    ({ENV_ACCESS_KEY: "ci-uploader", ENV_SECRET_KEY: "short"}, ENV_SECRET_KEY),
    ({ENV_ACCESS_KEY: "ci-uploader", ENV_SECRET_KEY: hash_secret("ci-uploader-secret-0123", 100_000)},
     ENV_SECRET_KEY),
    ({ENV_ACCESS_KEY: "ci uploader", ENV_SECRET_KEY: "ci-uploader-secret-0123"}, ENV_ACCESS_KEY),
    ({ENV_ACCESS_KEY: "ci/uploader", ENV_SECRET_KEY: "ci-uploader-secret-0123"}, ENV_ACCESS_KEY),
])
def test_a_half_or_weak_environment_key_pair_fails_loudly(environ: dict[str, str], names: str) -> None:
    with pytest.raises(ValueError, match=names):
        environment_user(environ)


def test_empty_environment_variables_add_nothing() -> None:
    assert environment_user({ENV_ACCESS_KEY: "", ENV_SECRET_KEY: ""}) is None


def _signed_get(access_key: str, secret: str) -> tuple[str, str, str, dict[str, str]]:
    wire = boto_wire(lambda c: c.get_object(Bucket="builds", Key="a.txt"), key=access_key, secret=secret)
    return wire.method, wire.path, wire.query, wire.headers


def test_key_pairs_sign_requests_that_verify_as_their_user() -> None:
    pairs = s3_key_pairs(settings(environ=ENV))

    def secret_for(access_key: str) -> str | None:
        grant = pairs.get(access_key)
        return grant.secret if grant else None

    for name, secret in [("builds", "builds-password"), ("ci-uploader", ENV[ENV_SECRET_KEY])]:
        signed = verify(*_signed_get(name, secret), secret_for, time.time())
        assert signed is not None and pairs[signed.access_key].name == name
    with pytest.raises(S3AuthError) as caught:
        verify(*_signed_get("hashed", "hashed-password"), secret_for, time.time())
    assert caught.value.code == "InvalidAccessKeyId"


def test_the_environment_user_signs_in_with_basic_too() -> None:
    """One user, whichever API it speaks: the key pair is also a Basic login."""
    grant = next(user for user in settings(environ=ENV).users if user.name == "ci-uploader")
    assert (grant.secret, grant.access, grant.prefix) == (ENV[ENV_SECRET_KEY], "write", "")
