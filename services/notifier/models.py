"""The notifier's HTTP models (they also generate its OpenAPI document)."""

import uuid
from datetime import datetime

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
