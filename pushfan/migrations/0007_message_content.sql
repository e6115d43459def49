-- What an alert says beyond title, body and data (subtitle, badge, sound, image, silent,
-- data-only, the apns/android override blocks...): pushfan.messages.Extras as JSON, '{}' for a
-- plain title + body alert. Silent pushes store an empty title and body.
ALTER TABLE alerts ADD COLUMN content jsonb NOT NULL DEFAULT '{}';
