"""Replay a 1,000,000-push alert through the sender autoscalers as configured in k8s/.

The alert is 2,000 batches of 500 that the expander publishes within 4 seconds. The queue
drains at `rate` batches/s per ready sender replica; a new replica consumes after 20 s
(scheduling, image already on the node, start-up probe). The HPA model (hpa_model.py) reads
min/max, target and behaviour from the rendered manifests, so this checks the numbers the
cluster would get: scale up within a minute, up to what the backlog asks for, and back down
to the minimum once the queue is empty, without flapping.
"""

from __future__ import annotations

import math

import pytest

from tests.deploy import manifests
from tests.deploy.hpa_model import Autoscaler, Controller, Policy, Rules, Sample, replay

PUSHES = 1_000_000
BATCH = 500
BATCHES = PUSHES // BATCH
PUBLISH_S = 4.0
STARTUP_S = 20.0
ALERT_AT = 0.0


def scalers(overlay: str) -> dict[str, Autoscaler]:
    docs = manifests.build(overlay)
    found = {
        so["spec"]["scaleTargetRef"]["name"]: Autoscaler.from_scaled_object(so)
        for so in manifests.find(docs, "ScaledObject")
    }
    for hpa in manifests.find(docs, "HorizontalPodAutoscaler"):
        if any(m["type"] == "External" for m in hpa["spec"]["metrics"]):
            found[hpa["spec"]["scaleTargetRef"]["name"]] = Autoscaler.from_hpa(hpa)
    assert set(found) == {"pushfan-sender-apns", "pushfan-sender-fcm", "pushfan-sender-web"}, (
        overlay
    )
    return found


def scale_down_bound(scaler: Autoscaler, top: int) -> float:
    """Seconds after the queue empties by which the replicas must be back at the minimum:
    the stabilization window, then one rate-limited step per policy period."""
    rules, r, steps = scaler.scale_down, top, 0
    while r > scaler.min_replicas:
        proposals = [
            r - p.value if p.kind == "Pods" else int(r * (1 - p.value / 100))
            for p in rules.policies
        ]
        r = max(scaler.min_replicas, min(proposals) if rules.select == "Max" else max(proposals))
        steps += 1
    period = max(p.period_s for p in rules.policies)
    step_s = math.ceil(period / scaler.sync_period_s) * scaler.sync_period_s
    return rules.stabilization_s + steps * step_s + 2 * scaler.sync_period_s


def run(scaler: Autoscaler, share: float, rate: float, offset: float) -> list[Sample]:
    batches = BATCHES * share

    def arrivals(t: float) -> float:
        return batches * min(1.0, max(0.0, t - ALERT_AT) / PUBLISH_S)

    duration = 60 + batches / (scaler.max_replicas * rate) * 4 + 900
    return replay(
        scaler,
        arrivals,
        per_replica_rate=rate,
        startup_s=STARTUP_S,
        duration_s=duration,
        sync_offset_s=offset,
    )


@pytest.mark.parametrize("overlay", manifests.OVERLAYS)
@pytest.mark.parametrize("share", [1.0, 0.5], ids=["all-one-provider", "half"])
@pytest.mark.parametrize("rate", [2.0, 5.0, 10.0], ids=lambda r: f"{r:g}batch/s")
@pytest.mark.parametrize("offset", [0.0, 14.5], ids=["sync-at-alert", "sync-just-missed"])
def test_million_push_alert_scales_up_and_back_down(
    overlay: str, share: float, rate: float, offset: float
) -> None:
    """Given the configured autoscaler, when a 1M-push alert lands, then the senders scale
    up within 60 s to what the backlog asks for and return to the minimum after it drains."""
    for name, scaler in scalers(overlay).items():
        samples = run(scaler, share, rate, offset)
        first_up = next(s.t for s in samples if s.replicas > scaler.min_replicas)
        # Caught up: as many replicas as the backlog asks for at that moment.
        caught_up = next(
            s.t
            for s in samples
            if s.replicas >= min(scaler.max_replicas, math.ceil(s.depth / scaler.target))
            and s.t > ALERT_AT + PUBLISH_S
        )
        # What the backlog asks for once the first scale-up period has passed (before
        # that, the rate limit decides; after it, the replicas must follow the backlog).
        period = max(p.period_s for p in scaler.scale_up.policies)
        needed = max(
            min(scaler.max_replicas, math.ceil(s.depth / scaler.target))
            for s in samples
            if s.t >= first_up + period
        )
        top = max(s.replicas for s in samples)
        at_top = next(s.t for s in samples if s.replicas == top)
        drained = next(s.t for s in samples if s.t > ALERT_AT + PUBLISH_S and s.depth == 0)
        at_min = next(s.t for s in samples if s.t > drained and s.replicas == scaler.min_replicas)
        label = f"{overlay} {name}"
        assert first_up - ALERT_AT <= 60, f"{label}: first scale-up at {first_up}s"
        assert caught_up - ALERT_AT <= 60, f"{label}: behind the backlog until {caught_up}s"
        assert needed * (1 - scaler.tolerance) <= top <= scaler.max_replicas, (
            f"{label}: peak of {top} replicas, the backlog asked for {needed}"
        )
        assert at_top - ALERT_AT <= 60, f"{label}: peak of {top} replicas only at {at_top}s"
        assert at_min - drained <= scale_down_bound(scaler, top), (
            f"{label}: drained at {drained}s, at minimum only at {at_min}s"
        )
        assert all(s.replicas == scaler.min_replicas for s in samples if s.t >= at_min), label
        first_down = next(s.t for s in samples if s.t > at_top and s.replicas < top)
        later = [s.replicas for s in samples if s.t >= first_down]
        assert later == sorted(later, reverse=True), f"{label}: flapped after scaling down"
        assert first_down >= drained, f"{label}: scaled down before the queue was empty"


def test_production_drains_a_million_pushes_within_three_minutes_at_2000_pushes_s() -> None:
    """At 4 batches/s per replica (2,000 pushes/s), production clears 1M pushes for one
    provider within 3 minutes of the alert."""
    scaler = scalers("production")["pushfan-sender-apns"]
    samples = run(scaler, 1.0, 4.0, 14.5)
    drained = next(s.t for s in samples if s.t > PUBLISH_S and s.depth == 0)
    assert drained <= 180


def _controller(**rules: Rules) -> Controller:
    up = Rules(0, "Max", (Policy("Pods", 100, 15),))
    down = Rules(0, "Max", (Policy("Percent", 100, 15),))
    scaler = Autoscaler(1, 100, 20.0, rules.get("up", up), rules.get("down", down))
    return Controller(scaler, 10)


def test_model_keeps_replicas_within_tolerance() -> None:
    """A metric within 10% of target x replicas changes nothing; just outside it does."""
    controller = _controller()
    assert controller.sync(15, 10 * 20 * 1.09) == 10
    assert controller.sync(30, 10 * 20 * 1.11) == 12


def test_model_holds_scale_down_for_the_stabilization_window() -> None:
    """A scale-down waits until the highest recommendation in the window allows it."""
    controller = _controller(down=Rules(60, "Max", (Policy("Percent", 100, 15),)))
    assert controller.sync(15, 0) == 10  # the window starts at the initial count
    assert controller.sync(45, 0) == 10
    assert controller.sync(75, 0) == 1


def test_model_rate_limits_scale_up_per_period() -> None:
    """Pods 4 per 15 s: at most 4 more replicas within any 15 s period."""
    controller = _controller(up=Rules(0, "Max", (Policy("Pods", 4, 15),)))
    assert controller.sync(15, 2000) == 14
    assert controller.sync(20, 2000) == 14
    assert controller.sync(30, 2000) == 18


def test_model_reads_defaults_for_missing_behavior() -> None:
    """An HPA without behaviour gets the API server's defaults (300 s scale-down window)."""
    hpa = {
        "spec": {
            "minReplicas": 2,
            "maxReplicas": 9,
            "metrics": [
                {
                    "type": "External",
                    "external": {"target": {"type": "AverageValue", "averageValue": "30"}},
                }
            ],
        }
    }
    scaler = Autoscaler.from_hpa(hpa)
    assert (scaler.min_replicas, scaler.max_replicas, scaler.target) == (2, 9, 30.0)
    assert scaler.scale_down.stabilization_s == 300
    assert scaler.scale_up.policies == (Policy("Pods", 4, 15), Policy("Percent", 100, 15))
