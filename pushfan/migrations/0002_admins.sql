-- Dashboard admins (argon2 password hashes), and targeted pushes stored as alerts.
CREATE TABLE admins (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz
);

-- 'targeted' alerts come from POST /v1/notifications: their audience is an explicit list
-- (device ids, tokens, user ids) kept here so a retried trigger can republish it.
ALTER TABLE alerts
    ADD COLUMN kind text NOT NULL DEFAULT 'global' CHECK (kind IN ('global', 'targeted')),
    ADD COLUMN targets jsonb;
