"""Unit tests for the credential checks: APNs provider tokens and the FCM OAuth grant."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest

from loadtest.credentials import ApnsCredentials, FcmCredentials, write_apns_key
from loadtest.simulators.apns_auth import AuthKey, ProviderTokenVerifier
from loadtest.simulators.oauth import GRANT_TYPE, GrantError, ServiceAccount, TokenIssuer
from pushfan.provider_tokens import ServiceAccount as PushfanAccount
from pushfan.provider_tokens import apns_provider_token
from tests.fixtures.simulators import assertion, provider_token

AUDIENCE = "https://sim.test/token"


@pytest.fixture
def verifier(apns_creds: ApnsCredentials) -> ProviderTokenVerifier:
    spec = f"{apns_creds.key_id}:{apns_creds.team_id}:{apns_creds.public_key_file}"
    return ProviderTokenVerifier([AuthKey.parse(spec)])


def test_provider_token_accepted_for_an_hour(
    verifier: ProviderTokenVerifier, apns_creds: ApnsCredentials
) -> None:
    now = time.time()
    token = provider_token(apns_creds, now)
    assert verifier.check(token, now) is None
    assert verifier.check(token, now + 3599) is None
    assert verifier.check(token, now + 3601) == "ExpiredProviderToken"


def test_provider_token_refusals(
    verifier: ProviderTokenVerifier, apns_creds: ApnsCredentials, tmp_path: object
) -> None:
    now = time.time()
    assert verifier.check(None, now) == "MissingProviderToken"
    assert verifier.check("not.a.jwt", now) == "InvalidProviderToken"
    assert verifier.check(provider_token(apns_creds, now + 600), now) == "InvalidProviderToken"


def test_provider_token_signed_by_another_key_is_invalid(
    verifier: ProviderTokenVerifier,
    apns_creds: ApnsCredentials,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    other = write_apns_key(tmp_path_factory.mktemp("other"))
    forged = ApnsCredentials(
        other.key_file, other.public_key_file, apns_creds.key_id, apns_creds.team_id
    )
    assert verifier.check(provider_token(forged), time.time()) == "InvalidProviderToken"


def form(**fields: str) -> bytes:
    return urlencode(fields).encode()


@pytest.fixture
def issuer(fcm_creds: FcmCredentials) -> TokenIssuer:
    account = ServiceAccount.parse(f"{fcm_creds.client_email}={fcm_creds.public_key_file}")
    return TokenIssuer([account], ttl_s=60)


def test_grant_issues_a_bearer_token_valid_for_its_ttl(
    issuer: TokenIssuer, fcm_creds: FcmCredentials
) -> None:
    answer = issuer.grant(
        form(grant_type=GRANT_TYPE, assertion=assertion(fcm_creds, AUDIENCE)), {AUDIENCE}
    )
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 60
    now = time.time()
    assert issuer.valid(answer["access_token"], now)
    assert not issuer.valid(answer["access_token"], now + 61)
    assert not issuer.valid("ya29.guess", now)
    assert not issuer.valid(None, now)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"scope": "https://www.googleapis.com/auth/userinfo.email"}, "invalid_scope"),
        ({"aud": "https://elsewhere.test/token"}, "invalid_grant"),
        ({"iss": "stranger@x.iam.gserviceaccount.com"}, "invalid_grant"),
        ({"exp": int(time.time()) + 7200}, "invalid_grant"),
        ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, "invalid_grant"),
    ],
)
def test_grant_refusals(
    issuer: TokenIssuer, fcm_creds: FcmCredentials, overrides: dict[str, object], error: str
) -> None:
    body = form(grant_type=GRANT_TYPE, assertion=assertion(fcm_creds, AUDIENCE, **overrides))
    with pytest.raises(GrantError) as refused:
        issuer.grant(body, {AUDIENCE})
    assert refused.value.error == error


def test_grant_needs_the_jwt_bearer_grant_type(
    issuer: TokenIssuer, fcm_creds: FcmCredentials
) -> None:
    with pytest.raises(GrantError) as refused:
        issuer.grant(form(grant_type="client_credentials"), {AUDIENCE})
    assert refused.value.error == "unsupported_grant_type"


def test_the_products_minting_passes_the_simulators_checks(
    verifier: ProviderTokenVerifier,
    apns_creds: ApnsCredentials,
    issuer: TokenIssuer,
    fcm_creds: FcmCredentials,
) -> None:
    """pushfan.provider_tokens (what the senders and the dry run sign) signs what Apple's
    and Google's checks, as the simulators play them, accept."""
    now = time.time()
    key = apns_creds.key_file.read_text()
    token = apns_provider_token(key, apns_creds.key_id, apns_creds.team_id, now)
    assert verifier.check(token, now) is None
    account = PushfanAccount.parse(fcm_creds.service_account_file.read_text())
    answer = issuer.grant(form(**account.token_form(AUDIENCE, int(now))), {AUDIENCE})
    assert answer["token_type"] == "Bearer"
