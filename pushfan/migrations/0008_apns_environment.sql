-- Which APNs host serves an iOS device: 'production' (App Store, TestFlight, ad hoc builds)
-- or 'sandbox' (development builds). Android devices keep the default.
ALTER TABLE devices ADD COLUMN apns_environment text NOT NULL DEFAULT 'production'
    CHECK (apns_environment IN ('production', 'sandbox'));
