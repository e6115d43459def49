-- Scheduled alerts (issue 16): an alert with `send_at` is stored `scheduled` and fired by the
-- workers' scheduler (pushfan.workers.scheduler), which takes due rows with
-- FOR UPDATE SKIP LOCKED, publishes their expansion with confirms and only then commits
-- `queued` + `fired_at`: several schedulers never hold the same row, and one killed between
-- its publish and its commit leaves the row for another (the expander plans an alert once).
ALTER TABLE alerts DROP CONSTRAINT alerts_status_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_status_check
    CHECK (status IN ('scheduled', 'queued', 'expanding', 'sending', 'done', 'cancelled'));
ALTER TABLE alerts
    ADD COLUMN send_at  timestamptz,
    ADD COLUMN fired_at timestamptz;
-- The schedulers' poll reads this small index alone.
CREATE INDEX alerts_due ON alerts (send_at) WHERE status = 'scheduled';
