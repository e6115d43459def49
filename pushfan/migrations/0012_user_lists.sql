-- User lists: the users an alert targets or excludes, stored once and referenced by id
-- (`audience.user_list`, `audience.exclude_user_list`), so neither the request body nor
-- each shard message carries them. An uploaded list is appended to in chunks, then
-- completed: only a complete list can be used, and it never changes after (an alert's
-- estimate and expansion read the same members). An alert's inline `user_ids` /
-- `exclude_user_ids` are stored as lists of that alert (alert_id set) when it is queued.
CREATE TABLE user_lists (
    id          uuid PRIMARY KEY,
    owner       text NOT NULL,
    name        text NOT NULL DEFAULT '',
    users       integer NOT NULL DEFAULT 0,
    complete    boolean NOT NULL DEFAULT false,
    alert_id    uuid,
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_lists_owner ON user_lists (owner, created_at);

-- The audience condition probes (list_id, user_id) for each device with a user_id.
CREATE TABLE user_list_members (
    list_id  uuid NOT NULL REFERENCES user_lists (id) ON DELETE CASCADE,
    user_id  text NOT NULL,
    PRIMARY KEY (list_id, user_id)
);
