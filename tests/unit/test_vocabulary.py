"""One vocabulary: outcomes, providers, Redis key names, metric labels, rate-limit values."""

from __future__ import annotations

from pushfan import metrics
from pushfan.keys import RedisKeys
from pushfan.outcomes import FINAL_OUTCOMES, Outcome
from pushfan.provider import PLATFORM_PROVIDER, Provider
from pushfan.provider_rate import UNLIMITED, Feedback, RateKey, ceiling
from pushfan.settings import AppConfig, Settings


def test_the_final_outcomes_are_the_outcomes_that_end_a_push() -> None:
    assert set(Outcome) - set(FINAL_OUTCOMES) == {Outcome.RETRIED, Outcome.DEDUPLICATED}
    assert metrics.OUTCOMES == tuple(o.value for o in Outcome)


def test_a_provider_is_the_string_on_the_wire() -> None:
    assert [str(p) for p in Provider] == ["apns", "fcm", "web"]
    assert Provider("apns") is Provider.APNS and Provider.FCM == "fcm"
    assert set(PLATFORM_PROVIDER.values()) == set(Provider)  # every platform has one


def test_every_redis_key_is_under_the_prefix() -> None:
    keys = RedisKeys("p:")
    names = [
        keys.alert("a"),
        keys.final("a"),
        keys.shards("a"),
        keys.published("a"),
        keys.lease("b"),
        keys.rate("fcm", "x"),
        keys.rate_seconds("fcm", "x"),
        keys.caller_limit("key:1"),
        keys.session("d"),
        keys.cancelled,
    ]
    assert all(name.startswith("p:") for name in names) and len(set(names)) == len(names)
    assert keys.alert("a") == "p:alert:a" and keys.lease("b") == "p:lease:b"


def test_a_configured_rate_of_zero_is_unlimited() -> None:
    assert ceiling(0) == UNLIMITED and ceiling(250.0) == 250.0
    assert not Feedback() and Feedback(accepted=1) and Feedback(throttled=1)
    assert RateKey("fcm", "x") == ("fcm", "x")


def test_a_per_app_rate_overrides_the_providers() -> None:
    settings = Settings(
        fcm_rate_limit_per_s=100,
        apps=[AppConfig(name="a", fcm_rate_limit_per_s=5), AppConfig(name="b")],
    )
    assert settings.rate_limit(Provider.FCM, "a") == 5
    assert settings.rate_limit(Provider.FCM, "b") == 100
    assert settings.rate_limit(Provider.APNS, "a") == 0  # APNs: unlimited by default


def test_unknown_http_methods_share_one_label() -> None:
    assert metrics.method_label("GET") == "GET" and metrics.method_label("BREW") == "other"
