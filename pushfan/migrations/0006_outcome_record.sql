-- The durable record of an alert's progress, from which its Redis state (dedup bitmap,
-- counters, stage) is rebuilt after Redis lost it (pushfan.outcome_record, pushfan.ledger_epoch).
--
-- One row per batch write of final outcomes (a sender's batch, a retry's subset, a slice the
-- expander counted cancelled or expired), committed before the batch is acked and before
-- Redis hears of it: `device_ids` are 4-byte little-endian ids grouped by outcome, `sizes`
-- how many ids each outcome has, in the order of pushfan.progress.FINAL_OUTCOMES
-- (delivered, invalid, failed, expired, cancelled). `reasons` / `reason_names` are optional
-- per-device detail: one byte per device indexing `reason_names` (the provider's reason).
CREATE TABLE outcome_batches (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id     uuid NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    batch_id     text NOT NULL,
    attempt      integer NOT NULL,
    sizes        integer[] NOT NULL,
    device_ids   bytea NOT NULL,
    retryable    integer NOT NULL DEFAULT 0,
    reasons      bytea,
    reason_names text[],
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outcome_batches_alert ON outcome_batches (alert_id, id);

-- The expansion ledger: the plan an alert's shards were cut from (first plan wins) and each
-- shard's audience, counted once.
ALTER TABLE alerts
    ADD COLUMN plan_lo bigint,
    ADD COLUMN plan_hi bigint,
    ADD COLUMN shards_total integer,
    -- Redis lost this alert's state this many times; each time it was rebuilt from the record.
    ADD COLUMN recoveries integer NOT NULL DEFAULT 0,
    ADD COLUMN last_recovery_at timestamptz,
    -- Devices the record holds more than one outcome for: pushes sent again after a loss.
    ADD COLUMN resent integer;
CREATE TABLE alert_shards (
    alert_id uuid NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    shard    integer NOT NULL,
    audience integer NOT NULL,
    PRIMARY KEY (alert_id, shard)
);

-- Which Redis dataset holds the ledger: a random id, also in Redis (`<prefix>epoch`). When
-- Redis's id is missing or differs, Redis lost state and is rebuilt from the record.
CREATE TABLE ledger_epoch (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch      text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
