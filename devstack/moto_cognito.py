"""Local stand-in: Cognito's ``RevokeToken``, which moto (5.2.5) does not implement.

In AWS, ``RevokeToken`` (app client with ``EnableTokenRevocation``) ends one refresh token: it can
mint no more access tokens. moto answers the action with ``NotImplementedError``. :func:`install`
adds exactly that behaviour to moto's Cognito backend: the refresh token is marked revoked (moto's
own representation of a signed-out refresh token, which its ``REFRESH_TOKEN_AUTH`` then refuses
with ``NotAuthorizedException``). It is installed into the embedded AWS (``devstack.moto_server``)
and into in-process moto for functional tests; the app's code path (``identity.revoke_refresh_token``)
is the same boto3 call in both places and in AWS.

Not modelled: AWS also marks the access tokens minted from the refresh token as revoked for Cognito's
own APIs. The API's authorizer does not ask Cognito; it refuses them by ``origin_jti``
(``chalicelib.sessions``).
"""
from __future__ import annotations


def revoke_refresh_token(backends, token: str, client_id: str) -> None:
    """Mark ``token`` revoked in whichever pool issued it to ``client_id``; unknown tokens are a no-op."""
    for account_backends in backends.values():
        for region, backend in account_backends.items():
            if region == "global":
                continue
            for pool in backend.user_pools.values():
                entry = pool.refresh_tokens.get(token)
                if entry is not None and entry[0] == client_id:
                    pool.refresh_tokens[token] = None
                    return


def install() -> None:
    """Teach moto's Cognito the ``RevokeToken`` action (idempotent)."""
    from moto.cognitoidp.models import cognitoidp_backends
    from moto.cognitoidp.responses import CognitoIdpResponse
    from moto.core.responses import EmptyResult

    if getattr(CognitoIdpResponse, "_photoscale_revoke_token", False):
        return

    def revoke_token(self):
        revoke_refresh_token(cognitoidp_backends, self._get_param("Token"), self._get_param("ClientId"))
        return EmptyResult()

    CognitoIdpResponse.revoke_token = revoke_token
    CognitoIdpResponse._photoscale_revoke_token = True
