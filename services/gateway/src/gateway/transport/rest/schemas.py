"""Response and request models: they drive the generated OpenAPI (with examples)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, field_validator

from gateway.domain.job_record import Job

# An 8x8 JPEG: the examples are requests a client can send as they are.
EXAMPLE_JPEG_B64 = (
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdA"
    "SFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2Nj"
    "Y2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAAIAAgDASIAAhEBAxEB/8QA"
    "HwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIh"
    "MUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVW"
    "V1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXG"
    "x8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQF"
    "BgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAV"
    "YnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOE"
    "hYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq"
    "8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDJooorA+gP/9k="
)

ITEM_EXAMPLE = {
    "id": "12345",
    "score": 0.93,
    "distance": 0.93,
    "metadata": {"category": "shoes", "class": "heels", "colour": "Black", "title": "Heels"},
    "image_url": "http://127.0.0.1:8080/v1/images/images/heels/12345.jpg",
}


class ItemOut(BaseModel):
    model_config = {"json_schema_extra": {"examples": [ITEM_EXAMPLE]}}

    id: str
    score: float | None = None
    distance: float | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    image_url: str | None = None


class SearchOut(BaseModel):
    """Hits plus the model and index versions that produced them."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "items": [ITEM_EXAMPLE],
                    "catalogue": "shoes",
                    "model": "infogan",
                    "model_version": "3",
                    "index": "shoes/infogan",
                    "index_generation": 42,
                    "cached": False,
                    "partial": False,
                }
            ]
        }
    }

    items: list[ItemOut]
    catalogue: str
    model: str
    model_version: str | None
    index: str
    index_generation: int
    cached: bool
    partial: bool = Field(
        description="true when the vector store answered from part of the index (never cached)"
    )


class SearchJson(BaseModel):
    """JSON form of a search: a base64 image (or an image URL when hosts are allow-listed)."""

    model_config = {
        "extra": "forbid",
        "json_schema_extra": {
            "examples": [
                {
                    "image_b64": EXAMPLE_JPEG_B64,
                    "catalogue": "shoes",
                    "k": 5,
                    "filters": {"class": ["heels"]},
                }
            ]
        },
    }

    image_b64: str | None = None
    image_url: str | None = None
    catalogue: str | None = Field(None, description="shoes, handbags, or empty/auto for automatic")
    model: str | None = Field(None, description="default: the GAN (infogan)")
    k: int = Field(10, ge=1)
    filters: dict[str, str | list[str]] | None = None


class ItemIn(BaseModel):
    model_config = {
        "extra": "forbid",
        "json_schema_extra": {
            "examples": [
                {
                    "id": "12345",
                    "catalogue": "shoes",
                    "image_b64": EXAMPLE_JPEG_B64,
                    "metadata": {"class": "heels", "colour": "Black", "title": "Heels"},
                }
            ]
        },
    }

    id: str = Field(min_length=1, max_length=200)
    catalogue: str
    image_b64: str
    metadata: dict[str, str] = Field(default_factory=dict)
    models: list[str] | None = Field(None, description="default: the default model")


class JobOut(BaseModel):
    # Read from the domain's Job (JobOut.of); no docstring: it would become API text.
    job_id: str = Field(validation_alias=AliasChoices("job_id", "id"))
    state: str = Field(
        description="running | succeeded | partial | failed | interrupted (the replica "
        "running it stopped; items counted done are stored, resubmit the rest)"
    )
    total: int
    done: int
    failed: int
    progress: float
    errors: list[dict[str, str]] = Field(default_factory=list, description="the first 50")
    created_at: str | None = Field(None, description="ISO 8601, UTC")
    updated_at: str | None = Field(None, description="last progress or state change")

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls.model_validate(job, from_attributes=True)

    @field_validator("created_at", "updated_at", mode="before")
    @classmethod
    def _iso(cls, value: object) -> object:
        """The record's wall-clock seconds, as ISO 8601 in UTC to the millisecond."""
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds")
        return value


class CompareRow(BaseModel):
    row: int
    items: list[ItemOut]


class CompareOut(BaseModel):
    query: ItemOut
    catalogue: str
    rows: list[CompareRow]
    token: str = Field(description="signed; the annotation service verifies it with the vote")


class ItemsPage(BaseModel):
    items: list[ItemOut]
    total: int
    offset: int
    limit: int


class ModelOut(BaseModel):
    name: str
    default: bool
    catalogues: list[str]
    dimension: int
    version: str | None = None


class CatalogueOut(BaseModel):
    name: str
    models: list[str]
    items: int


class ErrorOut(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "error": {
                        "code": "dependency_unavailable",
                        "message": "embedder unavailable: ...",
                    }
                }
            ]
        }
    }

    error: dict[str, Any]
