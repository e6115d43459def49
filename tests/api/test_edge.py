"""The edge's smaller guarantees: redirects never name the client's Host, no page loads a
script from elsewhere, the OpenAPI document declares the bearer scheme and every answer a
/v1 route can give, and the metrics listener stays on loopback unless told otherwise."""

from __future__ import annotations

import httpx

from pushfan.metrics import serve_worker_endpoints
from pushfan.settings import Settings


async def test_trailing_slash_redirect_ignores_a_forged_host(api: httpx.AsyncClient) -> None:
    response = await api.get("/admin/", headers={"host": "evil.example"})
    assert response.status_code == 307
    assert response.headers["location"] == "/admin"


async def test_no_swagger_ui_from_a_cdn_and_a_strict_csp(api: httpx.AsyncClient) -> None:
    assert (await api.get("/docs")).status_code == 404
    assert (await api.get("/redoc")).status_code == 404
    document = await api.get("/openapi.json")
    assert document.status_code == 200
    assert (
        document.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    )
    assert "cdn" not in document.text.lower()


async def test_openapi_declares_bearer_auth_and_every_answer(api: httpx.AsyncClient) -> None:
    document = (await api.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    operations = [
        (path, method, op)
        for path, item in document["paths"].items()
        if path.startswith("/v1/")
        for method, op in item.items()
    ]
    assert len(operations) >= 7
    for path, method, op in operations:
        assert op["security"] == [{"bearer": []}], (method, path)
        codes = set(op["responses"])
        assert {"400", "401", "403", "422", "503"} <= codes, (method, path, codes)
        if "{" in path:
            assert "404" in codes, (method, path)
        if method != "get":
            assert {"413", "429"} <= codes, (method, path, codes)


def test_metrics_bind_loopback_by_default() -> None:
    settings = Settings()
    assert settings.metrics_host == "127.0.0.1"
    server = serve_worker_endpoints(settings.metrics_host, 0, lambda: True)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()


def test_cookies_are_secure_outside_development_or_when_asked() -> None:
    assert not Settings(environment="development").cookies_secure
    assert Settings(environment="development", secure_cookies=True).cookies_secure
    production = Settings().model_copy(update={"environment": "production"})
    assert production.cookies_secure
