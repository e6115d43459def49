-- Follow-ups (pushfan.follow_up): the devices a finished alert was delivered to, read once
-- from its outcome record (first outcome of a device wins) when a follow-up is first sent to
-- exactly them, so every shard of the follow-up selects its devices by index. One row per
-- delivered device, written only for alerts that get a follow-up; `delivered_set_sizes`
-- says the set is complete (written in the same transaction).
CREATE TABLE delivered_sets (
    alert_id  uuid NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    device_id bigint NOT NULL,
    PRIMARY KEY (alert_id, device_id)
);
CREATE TABLE delivered_set_sizes (
    alert_id uuid PRIMARY KEY REFERENCES alerts (id) ON DELETE CASCADE,
    devices  bigint NOT NULL,
    made_at  timestamptz NOT NULL DEFAULT now()
);

-- Receipts from phones (pushfan.receipts): what a device reported of an alert, once per
-- (alert, device, event); `at` is the phone's time, `recorded_at` ours.
CREATE TABLE receipts (
    alert_id    uuid NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    device_id   bigint NOT NULL,
    event       text NOT NULL CHECK (event IN ('received', 'displayed', 'opened')),
    at          timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (alert_id, device_id, event)
);
