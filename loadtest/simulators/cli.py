"""`pushfan simulate apns|fcm|webpush [options]`: run one provider simulator in the foreground."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from loadtest.simulators.apns import ApnsApp, ApnsConfig
from loadtest.simulators.apns_auth import AuthKey
from loadtest.simulators.faults import FaultConfig
from loadtest.simulators.fcm import FcmApp, FcmConfig
from loadtest.simulators.oauth import ServiceAccount
from loadtest.simulators.server import ServeOptions, run
from loadtest.simulators.webpush import WebPushApp, WebPushConfig


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction in [0, 1]")
    return value


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    net = common.add_argument_group("listening")
    net.add_argument("--host", default="127.0.0.1")
    net.add_argument("--port", type=int, help="default 8443 (apns), 8444 (fcm), 8445 (webpush)")
    net.add_argument("--h2c", action="store_true", help="cleartext HTTP/2 (prior knowledge)")
    net.add_argument("--cert", type=Path, help="server certificate PEM (with --key)")
    net.add_argument("--key", type=Path, help="server private key PEM")
    net.add_argument(
        "--tls-dir", type=Path, help="where ca.pem and a localhost certificate are made/reused"
    )
    faults = common.add_argument_group("faults (reproducible with --seed)")
    faults.add_argument("--seed", type=int, default=0)
    faults.add_argument(
        "--dead-fraction",
        type=_fraction,
        default=0.0,
        help="fraction of tokens that are dead, chosen by hash(seed, token)",
    )
    faults.add_argument(
        "--error-fraction",
        type=_fraction,
        default=0.0,
        help="fraction of requests answered 500 or 503",
    )
    faults.add_argument(
        "--rate-limit", type=float, default=0.0, help="requests/s above which the answer is 429"
    )
    faults.add_argument("--latency-ms", type=float, default=0.0, help="added to every push")
    faults.add_argument(
        "--latency-jitter-ms",
        type=float,
        default=0.0,
        help="latency is uniform in [latency-jitter, latency+jitter]",
    )
    faults.add_argument(
        "--drop-connection-every",
        type=int,
        default=0,
        metavar="N",
        help="abort the connection carrying every Nth request",
    )
    common.add_argument("--log-level", default="WARNING")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pushfan simulate", description=__doc__)
    sub = parser.add_subparsers(dest="provider", required=True)
    apns = sub.add_parser("apns", parents=[_common()], help="Apple APNs provider API")
    apns.add_argument(
        "--auth-key",
        action="append",
        default=[],
        metavar="KEY_ID:TEAM_ID:PUBLIC_PEM",
        help="token auth: repeatable, one per app (required unless --client-ca)",
    )
    apns.add_argument(
        "--client-ca",
        type=Path,
        help="certificate auth: clients present a certificate from this CA, checked per push"
        " for its environment (BadCertificateEnvironment) and topics (TopicDisallowed); with"
        " --auth-key too, clients without a certificate use token auth",
    )
    apns.add_argument(
        "--topic", action="append", default=[], help="accepted apns-topic (repeatable); default any"
    )
    apns.add_argument(
        "--environment",
        choices=("production", "sandbox"),
        help="the APNs host played: tokens of the other environment (sandbox tokens start"
        " with pushfan.seed.SANDBOX_TOKEN_PREFIX) get BadDeviceToken; default any token",
    )
    fcm = sub.add_parser("fcm", parents=[_common()], help="Google FCM HTTP v1")
    fcm.add_argument(
        "--account",
        action="append",
        default=[],
        required=True,
        metavar="CLIENT_EMAIL=PUBLIC_PEM",
        help="service account, repeatable",
    )
    fcm.add_argument(
        "--project",
        action="append",
        default=[],
        help="served project id (repeatable); others get 403 SENDER_ID_MISMATCH",
    )
    fcm.add_argument("--access-token-ttl", type=int, default=3600, metavar="S")
    fcm.add_argument(
        "--quota-per-minute",
        type=int,
        default=0,
        help="per-project messages/minute; beyond it 429 QUOTA_EXCEEDED",
    )
    web = sub.add_parser("webpush", parents=[_common()], help="a Web Push service that decrypts")
    web.add_argument(
        "--vapid-key",
        action="append",
        default=[],
        metavar="PUBLIC_B64URL",
        help="accepted VAPID public key (repeatable); others get 403; default any",
    )
    web.add_argument(
        "--origin",
        help="the origin senders reach this service at (the JWT `aud`); default from host/port",
    )
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    faults = FaultConfig(
        seed=args.seed,
        dead_fraction=args.dead_fraction,
        error_fraction=args.error_fraction,
        rate_limit=args.rate_limit,
        quota_per_minute=getattr(args, "quota_per_minute", 0),
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        drop_connection_every=args.drop_connection_every,
    )
    app: ApnsApp | FcmApp | WebPushApp
    if args.provider == "webpush":
        port = args.port or 8445
        origin = args.origin or f"{'http' if args.h2c else 'https'}://{args.host}:{port}"
        app = WebPushApp(WebPushConfig(origin, frozenset(args.vapid_key), faults))
    elif args.provider == "apns":
        if not args.auth_key and args.client_ca is None:
            build_parser().error("apns needs --auth-key or --client-ca")
        if args.client_ca is not None and (args.h2c or args.drop_connection_every):
            build_parser().error("--client-ca needs TLS and no --drop-connection-every")
        keys = [AuthKey.parse(spec) for spec in args.auth_key]
        config = ApnsConfig(
            keys, frozenset(args.topic), faults, args.environment, args.client_ca is not None
        )
        app = ApnsApp(config)
        port = args.port or 8443
    else:
        accounts = [ServiceAccount.parse(spec) for spec in args.account]
        app = FcmApp(FcmConfig(accounts, frozenset(args.project), args.access_token_ttl, faults))
        port = args.port or 8444
    options = ServeOptions(
        host=args.host,
        port=port,
        h2c=args.h2c,
        cert=args.cert,
        key=args.key,
        tls_dir=args.tls_dir,
        drop_connection_every=args.drop_connection_every,
        client_ca=getattr(args, "client_ca", None),
        client_optional=bool(getattr(args, "auth_key", None)),
    )
    return run(app, options, app.peers if isinstance(app, ApnsApp) else None)
