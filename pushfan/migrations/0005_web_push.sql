-- Web Push subscriptions: platform 'web', the endpoint as the token (unique per app), the
-- browser's keys ('p256dh auth', base64url) beside it, and when the browser said the
-- subscription expires (informational: the push service answers 404/410 after it).
ALTER TABLE devices DROP CONSTRAINT devices_platform_check;
ALTER TABLE devices
    ADD CONSTRAINT devices_platform_check CHECK (platform IN ('ios', 'android', 'web')),
    ADD COLUMN push_keys text,
    ADD COLUMN subscription_expires_at timestamptz,
    ADD CONSTRAINT devices_web_keys CHECK ((platform = 'web') = (push_keys IS NOT NULL));
