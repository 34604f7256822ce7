"""S3 key pairs: the users that can sign S3 requests.

SigV4 needs the secret itself on the server (the signature is an HMAC
keyed by it), so only users whose password is written plain in the config
can be key pairs: access key id = user name, secret = password, with the
user's access level and prefix. A ``pbkdf2-…`` hash cannot sign and stays
a Basic-only password. The user ``BLOBSVC_ACCESS_KEY`` and
``BLOBSVC_SECRET_KEY`` add (see :func:`blobsvc.auth.environment_user`) is
one of them, so a container needs nothing else to serve S3 clients.
"""

from __future__ import annotations

from blobsvc.auth import AuthSettings, Grant
from blobsvc.secrets import is_hashed


def s3_key_pairs(auth: AuthSettings) -> dict[str, Grant]:
    """Access key id -> grant (its ``secret`` signs)."""
    return {grant.name: grant for grant in auth.users if not is_hashed(grant.secret)}
