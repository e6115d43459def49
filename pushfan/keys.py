"""Every Redis key pushfan writes, in one place, all under the deployment's `redis_prefix`.

Per alert (expiring after `progress_ttl_s`, written by pushfan.progress and
pushfan.batch_ledger):
- `alert:<id>`: hash of counters: audience, delivered, invalid, failed, expired, cancelled,
  retryable, shards_total, shards_done, and the plan (plan_lo, plan_hi) the shards were cut
  from.
- `alert:<id>:final`: bitmap indexed by device id; a bit is set once the device's push has
  a final outcome. It is both the dedup check made before sending and the guard that makes
  every counter count a device once, however often a batch or shard is redelivered. One
  bit per device id: 10^7 devices cost 1.25 MB per alert.
- `alert:<id>:shards`: hash shard -> audience of that shard, so a re-expanded shard is
  counted once.
- `alert:<id>:published`: set once the alert's expansion message is confirmed by the
  broker, so a retried trigger republishes only what was never queued.
Per batch:
- `lease:<batch id>`: held while one worker sends that batch, any attempt (pushfan.batch_ledger).
Per (provider, app) rate limit (pushfan.provider_rate):
- `rl:<provider>:<app>`: GCRA state hash; `rl:<provider>:<app>:accepted`: per-second counts
  of accepted and throttled pushes.
Per API caller (pushfan.caller_rate): `limit:<caller>`, the GCRA theoretical arrival time.
Per API caller (pushfan.caller_rate) the callers are `key:<id>`, `address:<ip>`,
`admin:<id>` and the sign-in budgets `signin:{device,address,user}:<sha256>`.
Dashboard sessions (pushfan.sessions): `session:<sha256 of the cookie>`.
Sign-in (pushfan.signin): `signin:device:<sha256 of username and cookie>` and
`signin:address:<sha256 of username and address>`, set while that browser or address is
known for the username.
Cancellations (pushfan.cancellation): `cancelled`, a sorted set alert id -> when.
Pauses (pushfan.pausing): `paused`, the set of paused alert ids; `alert:<id>:auth`, a hash of
pushes attempted / refused for authentication (`judged` once the rule has been applied);
`alert:<id>:canary` (pushfan.canary), a hash: size, admitted, full_at, attempted, bad, verdict.
The ledger's epoch (pushfan.ledger_epoch): `epoch`, hash {id, seq} naming the dataset; never
expires.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RedisKeys:
    prefix: str

    def alert(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}"

    def final(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}:final"

    def shards(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}:shards"

    def published(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}:published"

    def lease(self, batch_id: str) -> str:
        return f"{self.prefix}lease:{batch_id}"

    def rate(self, provider: str, app: str) -> str:
        return f"{self.prefix}rl:{provider}:{app}"

    def rate_seconds(self, provider: str, app: str) -> str:
        return f"{self.prefix}rl:{provider}:{app}:accepted"

    def caller_limit(self, caller: str) -> str:
        return f"{self.prefix}limit:{caller}"

    def session(self, digest: str) -> str:
        return f"{self.prefix}session:{digest}"

    def known_device(self, digest: str) -> str:
        return f"{self.prefix}signin:device:{digest}"

    def known_address(self, digest: str) -> str:
        return f"{self.prefix}signin:address:{digest}"

    @property
    def cancelled(self) -> str:
        return f"{self.prefix}cancelled"

    @property
    def paused(self) -> str:
        return f"{self.prefix}paused"

    def canary(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}:canary"

    def auth_watch(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}:auth"

    @property
    def epoch(self) -> str:
        return f"{self.prefix}epoch"
