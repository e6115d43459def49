"""Signing the providers' credentials: the APNs provider token and the FCM service
account's OAuth2 assertion.

The senders (workers/providers) and the dry run's credentials check (pushfan.credentials)
both mint here, so the check signs exactly what a sender would send.

- APNs: an ES256 JWT `{"iss": team id, "iat": now}` with header `kid` = the key id.
- FCM: the JWT-bearer grant (RFC 7523) Google documents for service accounts: an RS256
  assertion `{"iss": client_email, "scope": FCM_SCOPE, "aud": token url, "iat", "exp"}`
  (header `kid` = private_key_id when the account has one), posted as TOKEN_FORM to the
  account's `token_uri`.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt
import orjson

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 3600


def apns_provider_token(key_pem: str, key_id: str, team_id: str, now: float) -> str:
    """The APNs provider token issued at `now` (raises ValueError / PyJWTError on a bad key)."""
    return jwt.encode(
        {"iss": team_id, "iat": int(now)}, key_pem, algorithm="ES256", headers={"kid": key_id}
    )


@dataclass(frozen=True)
class ServiceAccount:
    """The fields of a Google service account JSON that the token grant needs."""

    email: str
    private_key: str
    key_id: str | None
    token_uri: str

    @classmethod
    def parse(cls, service_account_json: str | bytes) -> ServiceAccount:
        """Raises ValueError (not JSON) or KeyError (a field missing)."""
        account = orjson.loads(service_account_json)
        return cls(
            email=account["client_email"],
            private_key=account["private_key"],
            key_id=account.get("private_key_id"),
            token_uri=account["token_uri"],
        )

    def assertion(self, token_url: str, now: int) -> str:
        """The signed assertion for `token_url`, valid from `now` for an hour."""
        claims = {
            "iss": self.email,
            "scope": FCM_SCOPE,
            "aud": token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
        }
        headers = {"kid": self.key_id} if self.key_id else None
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers=headers)

    def token_form(self, token_url: str, now: int) -> dict[str, str]:
        """The form posted to the token endpoint."""
        return {"grant_type": JWT_BEARER, "assertion": self.assertion(token_url, now)}
