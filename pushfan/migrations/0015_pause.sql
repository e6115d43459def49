-- Paused alerts (issue 16, item 4): an alert whose canary fails (pushfan.canary) or whose
-- pushes the provider refuses for authentication (pushfan.pausing) pauses itself;
-- `POST /v1/alerts/{id}/resume` sends the rest. Its batches wait on the delay ladder meanwhile: nothing is lost, nothing counted.
ALTER TABLE alerts DROP CONSTRAINT alerts_status_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_status_check
    CHECK (status IN ('scheduled', 'queued', 'expanding', 'sending', 'paused', 'done',
                      'cancelled'));
ALTER TABLE alerts ADD COLUMN paused_reason text;
-- The alert's canary (pushfan.messages.Canary as JSON), when it has one.
ALTER TABLE alerts ADD COLUMN canary jsonb;
