-- An alert's stages between queued and done live in Redis (pushfan.progress); the row keeps
-- the request and the final outcome. Whether its expansion message was published is marked in
-- Redis too (pushfan.progress), which costs less than a synchronous commit per trigger.
ALTER TABLE alerts DROP COLUMN published;
