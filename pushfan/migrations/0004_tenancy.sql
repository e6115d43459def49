-- Tenancy: API keys belong to an owner (a team or a service) and are bound to apps, and may
-- expire; alerts and devices remember the owner that made them; an Idempotency-Key is scoped
-- to its caller; dashboard admins get a role, and a session epoch that ends all their
-- sessions when it moves (password reset, "sign out everywhere").
--
-- Rows made before this migration (README, "Tenancy"): keys get owner 'default' and apps
-- {'*'} (every app of the deployment), so they keep working as they did until re-issued;
-- alerts and devices get owner 'default' (the dashboard's alerts 'dashboard'); admins get
-- role 'admin' (they could do everything before).
ALTER TABLE api_keys
    ADD COLUMN owner text NOT NULL DEFAULT 'default',
    ADD COLUMN apps text[] NOT NULL DEFAULT '{*}',
    ADD COLUMN expires_at timestamptz;
ALTER TABLE api_keys ALTER COLUMN owner DROP DEFAULT, ALTER COLUMN apps DROP DEFAULT;

ALTER TABLE alerts ADD COLUMN owner text;
UPDATE alerts SET owner = CASE WHEN created_by LIKE 'admin:%' THEN 'dashboard' ELSE 'default' END;
ALTER TABLE alerts ALTER COLUMN owner SET NOT NULL;
-- One Idempotency-Key namespace per caller (API key id, or admin:<name>).
ALTER TABLE alerts DROP CONSTRAINT alerts_idempotency_key_key;
CREATE UNIQUE INDEX alerts_idempotency ON alerts (created_by, idempotency_key);

-- Seeded and migrated devices belong to 'default'; the API always names the owner.
ALTER TABLE devices ADD COLUMN owner text NOT NULL DEFAULT 'default';

ALTER TABLE admins
    ADD COLUMN role text NOT NULL DEFAULT 'admin' CHECK (role IN ('viewer', 'sender', 'admin')),
    ADD COLUMN session_epoch integer NOT NULL DEFAULT 0;
ALTER TABLE admins ALTER COLUMN role SET DEFAULT 'viewer';
