-- Shared: the alert's counter names (pushfan.progress.COUNTERS) and its final outcomes
-- (pushfan.outcomes.FINAL_OUTCOMES), both in the Python order; tests/unit checks they agree.
local COUNTERS = {'audience', 'delivered', 'invalid', 'failed', 'expired', 'cancelled',
                  'retryable', 'shards_total', 'shards_done'}
local OUTCOMES = {'delivered', 'invalid', 'failed', 'expired', 'cancelled'}
