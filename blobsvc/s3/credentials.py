"""S3 key pairs: the users that can sign S3 requests.

SigV4 needs the secret itself on the server (the signature is an HMAC
keyed by it), so only users whose password is written plain in the config
can be key pairs: access key id = user name, secret = password, with the
user's access level and prefix. A ``pbkdf2-…`` hash cannot sign and stays
a Basic-only password.

``BLOBSVC_ACCESS_KEY`` and ``BLOBSVC_SECRET_KEY`` in the environment add
one write user, as ``BLOBSVC_TOKEN`` adds a token, so a container needs
nothing else to serve S3 clients.
"""

from __future__ import annotations

from typing import Mapping

from blobsvc.auth import MIN_TOKEN_LENGTH, AuthSettings, Grant
from blobsvc.secrets import is_hashed

ENV_ACCESS_KEY = "BLOBSVC_ACCESS_KEY"
ENV_SECRET_KEY = "BLOBSVC_SECRET_KEY"


def s3_key_pairs(auth: AuthSettings, environ: Mapping[str, str]) -> dict[str, Grant]:
    """Access key id -> grant (its ``secret`` signs). Raises ValueError naming the setting."""
    pairs = {grant.name: grant for grant in auth.users if not is_hashed(grant.secret)}
    env_grant = environment_key_pair(environ)
    if env_grant is not None:
        configured = next((grant for grant in auth.users if grant.name == env_grant.name), None)
        if configured is not None and configured != env_grant:
            raise ValueError(f"{ENV_ACCESS_KEY} names the user {env_grant.name!r} of auth.users; "
                             "choose another access key id")
        pairs[env_grant.name] = env_grant
    return pairs


def environment_key_pair(environ: Mapping[str, str]) -> Grant | None:
    """The write user ``BLOBSVC_ACCESS_KEY``/``BLOBSVC_SECRET_KEY`` add, if set.

    Both or neither: one alone is a mistake worth failing on at start.
    """
    access_key, secret = environ.get(ENV_ACCESS_KEY), environ.get(ENV_SECRET_KEY)
    if not access_key and not secret:
        return None
    if not access_key or not secret:
        missing = ENV_ACCESS_KEY if not access_key else ENV_SECRET_KEY
        raise ValueError(f"{missing} is not set: {ENV_ACCESS_KEY} and {ENV_SECRET_KEY} go together")
    if ":" in access_key or "/" in access_key or any(char.isspace() or char == "," for char in access_key):
        raise ValueError(f"{ENV_ACCESS_KEY} may not contain ':', '/', ',' or white space")
    if is_hashed(secret):
        raise ValueError(f"{ENV_SECRET_KEY} must be the secret itself: S3 signatures need it, not a hash")
    if len(secret) < MIN_TOKEN_LENGTH:
        raise ValueError(f"{ENV_SECRET_KEY} is too short: a secret key needs at least "
                         f"{MIN_TOKEN_LENGTH} characters")
    return Grant(name=access_key, secret=secret, access="write")
