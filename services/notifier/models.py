"""The notifier's HTTP models (they also generate its OpenAPI document)."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel


class DeadLetter(BaseModel):
    id: int
    event_id: uuid.UUID
    event_type: str
    reason: str
    correlation_id: str | None
    created_at: datetime
    replayed_at: datetime | None


class DeadLetterList(RootModel[list[DeadLetter]]):
    pass


class DeadLetterQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_replayed: bool = False
    after_id: int = Field(
        0, ge=0, lt=2**63, description="Keyset cursor: the last id of the previous page"
    )
    limit: int = Field(100, ge=1, le=500)


class SealingKey(BaseModel):
    algorithm: str
    public_key: str = Field(description="X25519, 32 bytes, base64url without padding")


DeliveryStatus = Literal["queued", "sent", "retrying", "dead"]


class Delivery(BaseModel):
    """One email and where its delivery stands (SPEC 9.3)."""

    id: uuid.UUID = Field(description="The id of the event that asked for the email")
    kind: str = Field(description="reply, receipt, closed or auto_reply")
    ticket: int | None
    recipient: str | None = Field(description="Known once the email has been addressed")
    status: DeliveryStatus
    attempts: int
    last_error: str | None = Field(description="The relay's answer (SMTP code and text), cut")
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


class DeliveryList(BaseModel):
    items: list[Delivery]


class DeliveryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ticket: int = Field(ge=1, lt=2**63, description="The ticket's number")
