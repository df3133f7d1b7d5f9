"""The metadata store's record of a published inversion, created at most once."""

from __future__ import annotations

from typing import Any

from ops.metadata.client import MetadataClient, MetadataStoreError


def ensure_l2_inversion_inventory(
    *, client: MetadataClient, create_params: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """The store's record of ``create_params["inversionId"]`` and whether this call created
    it. The store is asked first, so a retried or repeated publish never creates a second
    record; spectral lines are sent de-duplicated, in their order."""
    inversion_id = create_params["inversionId"]
    existing = client.l2_inversion(inversion_id)
    if existing is not None:
        return existing, False
    params = {**create_params, "spectralLines": list(dict.fromkeys(create_params["spectralLines"]))}
    try:
        return client.create_l2_inversion_inventory(params), True
    except MetadataStoreError:
        # A timeout or a lost answer leaves unknown whether the store made the record.
        recorded = client.l2_inversion(inversion_id)
        if recorded is None:
            raise
        return recorded, True
