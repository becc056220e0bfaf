"""`/v1/admin/*`: operator actions, admin key only (the auth middleware treats every `/v1/admin/` route as a
write). `POST /v1/admin/backup` copies the live data directory into a new folder under `backup_root`."""

from __future__ import annotations

import asyncio

from litestar import post

from api.errors import error_responses
from api.schemas.admin import BackupObject, BackupRequest, backup_object
from retrieval import ServiceConfig
from retrieval.service import RetrievalService
from retrieval.store.backup import destination_under

__all__ = ["create_backup"]


@post(
    "/v1/admin/backup",
    status_code=201,
    responses=error_responses(400, 401, 403, 500, 503, 507),
    summary="Back up the data directory (store, index snapshots, page images) while writes go on",
)
async def create_backup(data: BackupRequest, service: RetrievalService, config: ServiceConfig) -> BackupObject:
    dest = destination_under(config.backup_root, data.destination)
    return backup_object(await asyncio.to_thread(service.backup, dest))
