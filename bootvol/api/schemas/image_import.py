"""Glance v2 import bodies: the import request, and the discovery of import methods."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ImportMethodBody(BaseModel):
    # Glance's other methods carry more fields (glance_region, …): kept, and left unused.
    model_config = ConfigDict(extra="allow")

    name: str | None = None
    uri: str | None = None


class ImportBody(BaseModel):
    """``POST /v2/images/{id}/import``; the store fields matter only with multiple stores."""

    model_config = ConfigDict(extra="allow")

    method: ImportMethodBody


class ImportMethods(BaseModel):
    description: str = "Import methods available."
    type: str = "array"
    value: list[str]


class ImportInfo(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    import_methods: ImportMethods = Field(alias="import-methods")
