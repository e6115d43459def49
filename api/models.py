"""Request and response bodies of the REST API. Unknown fields are refused (422)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w.:-]+$")]
AppName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceRegistration(Strict):
    platform: Literal["ios", "android"]
    app: AppName
    token: Annotated[str, StringConstraints(min_length=32, max_length=4096)]
    user_id: Annotated[str, StringConstraints(max_length=256)] | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=32)
    locale: Annotated[str, StringConstraints(max_length=35)] | None = None
    time_zone: Annotated[str, StringConstraints(max_length=64)] | None = None


class DeviceOut(BaseModel):
    id: int
    created: bool


class AudienceIn(Strict):
    platforms: list[Literal["ios", "android"]] = Field(default_factory=list, max_length=2)
    apps: list[AppName] = Field(default_factory=list, max_length=100)
    tags: list[Tag] = Field(default_factory=list, max_length=32)


class AlertCreate(Strict):
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    body: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    data: dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], str] = Field(
        default_factory=dict, max_length=32
    )
    audience: AudienceIn = Field(default_factory=AudienceIn)
    ttl: int = Field(3600, ge=1, le=28 * 24 * 3600, description="seconds the alert stays valid")
    priority: Literal["high", "normal"] = "high"


class Counts(BaseModel):
    audience: int | None
    delivered: int
    invalid: int
    failed: int
    expired: int
    pending: int | None


class AlertOut(BaseModel):
    id: str
    status: Literal["queued", "expanding", "sending", "done", "cancelled"]
    title: str
    created_at: str
    expires_at: str
    finished_at: str | None
    counts: Counts


class Problem(BaseModel):
    detail: str
