-- Audience: what registration reports (app/OS versions, small attributes, last seen), saved
-- segments, and the indexes the segment language's selective filters use (docs/performance.md).
-- `last_seen` of devices registered before this migration starts at the migration's time
-- (a non-volatile default: no table rewrite).
ALTER TABLE devices
    ADD COLUMN app_version     text,
    ADD COLUMN app_version_key bigint,  -- pushfan.versions.version_key: sortable, NULL if unparsable
    ADD COLUMN os_version      text,
    ADD COLUMN os_version_key  bigint,
    ADD COLUMN attributes      jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN last_seen       timestamptz NOT NULL DEFAULT now();

CREATE INDEX devices_user_id ON devices (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX devices_attributes ON devices USING gin (attributes);
CREATE INDEX devices_app_version ON devices (app_version_key) WHERE active;
-- Counts (the estimate, the preview's breakdown) of segments over the low-cardinality fields
-- read this narrow index alone (index-only scans) instead of the wide rows.
CREATE INDEX devices_audience ON devices (platform, app, app_version_key)
    INCLUDE (locale, time_zone, last_seen, os_version_key, user_id) WHERE active;
-- The stale-token policy walks active devices by last_seen, oldest first.
CREATE INDEX devices_active_last_seen ON devices (last_seen) WHERE active;

-- A segment belongs to the owner of the key that saved it (every key of that owner sees it).
CREATE TABLE segments (
    owner       text NOT NULL,
    name        text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    description text NOT NULL DEFAULT '',
    audience    jsonb NOT NULL,
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, name)
);
