"""A small model of the Kubernetes HPA controller, for replaying queue-depth curves.

It follows kube-controller-manager's `pkg/controller/podautoscaler` for one External (or
KEDA) metric with an AverageValue target, which is what KEDA's RabbitMQ `QueueLength`
trigger becomes:

- every sync period (15 s) the raw recommendation is `current` when
  |metric / (target x current) - 1| <= tolerance (0.1), else ceil(metric / target);
- stabilization: up = min of the recommendations in the scale-up window, down = max of
  those in the scale-down window (the window starts with the replica count at creation);
- rate limits: each policy allows `value` pods or `value` percent of the replicas at the
  start of its period; selectPolicy Max takes the largest change, Min the smallest;
- min/max replicas.

Not modelled: pods that are not ready yet being left out of the replica count (they are
not, for External metrics), KEDA's scale to and from zero, the fallback.
Numbers come from the manifests (`Autoscaler.from_scaled_object` / `from_hpa`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

SYNC_PERIOD_S = 15.0
TOLERANCE = 0.1

PolicyKind = Literal["Pods", "Percent"]
Select = Literal["Max", "Min", "Disabled"]


@dataclass(frozen=True)
class Policy:
    kind: PolicyKind
    value: int
    period_s: int


@dataclass(frozen=True)
class Rules:
    stabilization_s: int
    select: Select
    policies: tuple[Policy, ...]

    @classmethod
    def from_manifest(cls, rules: dict[str, Any] | None, *, up: bool) -> Rules:
        """HPAScalingRules, with the API server's defaults for what is left out."""
        default = (
            cls(0, "Max", (Policy("Pods", 4, 15), Policy("Percent", 100, 15)))
            if up
            else cls(300, "Max", (Policy("Percent", 100, 15),))
        )
        if not rules:
            return default
        policies = tuple(
            Policy(p["type"], int(p["value"]), int(p["periodSeconds"]))
            for p in rules.get("policies", [])
        )
        return cls(
            int(rules.get("stabilizationWindowSeconds", default.stabilization_s)),
            rules.get("selectPolicy", "Max"),
            policies or default.policies,
        )


@dataclass(frozen=True)
class Autoscaler:
    min_replicas: int
    max_replicas: int
    target: float  # AverageValue per replica
    scale_up: Rules
    scale_down: Rules
    tolerance: float = TOLERANCE
    sync_period_s: float = SYNC_PERIOD_S

    @classmethod
    def from_scaled_object(cls, so: dict[str, Any]) -> Autoscaler:
        spec = so["spec"]
        (trigger,) = spec["triggers"]
        assert trigger["metadata"].get("mode") == "QueueLength", "only QueueLength is modelled"
        minimum = int(spec.get("minReplicaCount", 0))
        if minimum < 1:
            raise ValueError("scale to zero (minReplicaCount 0) is not modelled")
        behavior = spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {})
        behavior = behavior.get("behavior", {})
        return cls(
            minimum,
            int(spec.get("maxReplicaCount", 100)),
            float(trigger["metadata"]["value"]),
            Rules.from_manifest(behavior.get("scaleUp"), up=True),
            Rules.from_manifest(behavior.get("scaleDown"), up=False),
        )

    @classmethod
    def from_hpa(cls, hpa: dict[str, Any]) -> Autoscaler:
        spec = hpa["spec"]
        (metric,) = spec["metrics"]
        target = metric["external"]["target"]
        assert target["type"] == "AverageValue"
        behavior = spec.get("behavior", {})
        return cls(
            int(spec.get("minReplicas", 1)),
            int(spec["maxReplicas"]),
            float(target["averageValue"]),
            Rules.from_manifest(behavior.get("scaleUp"), up=True),
            Rules.from_manifest(behavior.get("scaleDown"), up=False),
        )


@dataclass
class Controller:
    """The HPA's state for one target: recommendations and scale events, over time."""

    scaler: Autoscaler
    replicas: int
    now: float = 0.0
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    up_events: list[tuple[float, int]] = field(default_factory=list)
    down_events: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # maybeInitScaleDownStabilizationWindow: the window starts at the current count.
        self.recommendations.append((self.now, self.replicas))

    def raw_recommendation(self, metric: float) -> int:
        s = self.scaler
        ratio = metric / (s.target * self.replicas)
        if abs(1.0 - ratio) <= s.tolerance:
            return self.replicas
        return math.ceil(metric / s.target)

    def _stabilize(self, desired: int) -> int:
        up_cut = self.now - self.scaler.scale_up.stabilization_s
        down_cut = self.now - self.scaler.scale_down.stabilization_s
        up, down = desired, desired
        for at, rec in self.recommendations:
            if at > up_cut:
                up = min(up, rec)
            if at > down_cut:
                down = max(down, rec)
        self.recommendations.append((self.now, desired))
        horizon = self.now - max(
            self.scaler.scale_up.stabilization_s, self.scaler.scale_down.stabilization_s
        )
        self.recommendations = [(a, r) for a, r in self.recommendations if a > horizon]
        return min(max(self.replicas, up), down)

    def _changed(self, events: list[tuple[float, int]], period_s: int) -> int:
        return sum(change for at, change in events if at > self.now - period_s)

    def _limit(self, rules: Rules, *, up: bool) -> int:
        if rules.select == "Disabled":
            return self.replicas
        pick: Callable[[int, int], int]
        if up:
            pick, result = (max, -(2**31)) if rules.select == "Max" else (min, 2**31)
        else:
            pick, result = (min, 2**31) if rules.select == "Max" else (max, -(2**31))
        for policy in rules.policies:
            start = (
                self.replicas
                - self._changed(self.up_events, policy.period_s)
                + self._changed(self.down_events, policy.period_s)
            )
            if policy.kind == "Pods":
                proposed = start + policy.value if up else start - policy.value
            elif up:
                proposed = math.ceil(start * (1 + policy.value / 100))
            else:
                proposed = int(start * (1 - policy.value / 100))
            result = pick(result, proposed)
        return result

    def sync(self, now: float, metric: float) -> int:
        """One controller sync at time `now` seeing `metric`; returns the new replica count."""
        self.now = now
        s = self.scaler
        desired = self._stabilize(self.raw_recommendation(metric))
        if desired > self.replicas:
            allowed = min(s.max_replicas, max(self._limit(s.scale_up, up=True), self.replicas))
            desired = min(desired, allowed)
        elif desired < self.replicas:
            allowed = max(s.min_replicas, min(self._limit(s.scale_down, up=False), self.replicas))
            desired = max(desired, allowed)
        desired = min(max(desired, s.min_replicas), s.max_replicas)
        if desired > self.replicas:
            self.up_events.append((now, desired - self.replicas))
        elif desired < self.replicas:
            self.down_events.append((now, self.replicas - desired))
        self.replicas = desired
        return desired


@dataclass(frozen=True)
class Sample:
    t: float
    depth: float  # messages in the queue, ready + unacked (what the trigger reads)
    replicas: int  # desired, as the HPA set them
    ready: int  # replicas consuming


def replay(
    scaler: Autoscaler,
    arrivals: Callable[[float], float],
    *,
    per_replica_rate: float,
    startup_s: float,
    duration_s: float,
    sync_offset_s: float = 0.0,
    dt: float = 0.5,
) -> list[Sample]:
    """Run the queue and the controller together.

    `arrivals(t)` is the number of batches published up to time t (the recorded curve);
    each ready replica acks `per_replica_rate` batches/s; a new replica consumes after
    `startup_s`. The HPA syncs every sync period, the first one at `sync_offset_s`.
    """
    controller = Controller(scaler, scaler.min_replicas)
    started: list[float] = [-math.inf] * scaler.min_replicas  # start time of each replica
    depth, published, t, next_sync = 0.0, 0.0, 0.0, sync_offset_s
    samples: list[Sample] = []
    while t <= duration_s:
        total = arrivals(t)
        depth += total - published
        published = total
        if t >= next_sync:
            replicas = controller.sync(t, depth)
            if replicas > len(started):
                started += [t] * (replicas - len(started))
            else:
                started = started[:replicas]  # the newest go first; unacked work requeues
            next_sync += scaler.sync_period_s
        ready = sum(1 for s in started if t - s >= startup_s)
        samples.append(Sample(t, depth, controller.replicas, ready))
        depth = max(0.0, depth - ready * per_replica_rate * dt)
        t += dt
    return samples
