"""Stand-ins for Apple APNs and Google FCM that speak the real HTTP/2 protocols.

One module per job: `apns` and `fcm` are the RSGI apps, `apns_auth` and `oauth` check their
credentials, `faults` injects failures, `recorder` counts what was accepted, `control` serves
`/_sim/*`, `tls` makes certificates, `relay` drops connections, `server` runs an app under
granian and `cli` parses `pushfan simulate ...`.
"""
