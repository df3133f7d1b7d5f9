"""Catalog messages on the data center's interservice bus (RabbitMQ over AMQP).

Publishing an inversion tells the catalog about each file it put in the bucket: one
``catalog.frame.m`` message per FITS file, then one ``catalog.object.m`` for the ASDF
(L2-PRODUCTS.md §4). Messages are persistent and confirmed by the broker; connection errors
are retried a bounded number of times. Delivery is at least once: a retried publish may
send a message again, which the catalog tolerates (its receipt count is not incremented).

The bus is optional: without ``LEVEL2_ISB_URL`` nothing is sent and the result says skipped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from amqp.exceptions import MessageNacked
from django.conf import settings
from kombu import Connection, Exchange, Producer
from kombu.exceptions import OperationalError

DEFAULT_EXCHANGE = "master.direct.x"
FRAME_ROUTING_KEY = "catalog.frame.m"
OBJECT_ROUTING_KEY = "catalog.object.m"
CONNECT_TIMEOUT_S = 5.0
CONFIRM_TIMEOUT_S = 30.0
# Bounded, so that a bus that is down fails the step (which the task retries later)
# instead of holding a worker: under 5 s of waiting in all.
RETRY_POLICY = {"max_retries": 3, "interval_start": 0.5, "interval_step": 1.0, "interval_max": 3.0}


class CatalogError(Exception):
    """The interservice bus could not be reached or did not take a message."""


@dataclass(frozen=True)
class CatalogResult:
    """What was sent: ``skipped`` when no bus is configured (then nothing was sent)."""

    frame_messages: int = 0
    object_messages: int = 0
    skipped: bool = False

    def as_dict(self) -> dict[str, int | bool]:
        """For an event's details (JSON)."""
        return asdict(self)


def send_catalog_messages(
    *,
    bucket: str,
    proposal_id: str,
    inversion_dir: str,
    inversion_id: str,
    fits_names: list[str],
    asdf_key: str,
    conversation_id: str,
    url: str | None = None,
    exchange: str | None = None,
) -> CatalogResult:
    """Send one frame message per FITS file (in the order given), then the ASDF's object
    message, to the exchange of ``LEVEL2_ISB_EXCHANGE`` at ``LEVEL2_ISB_URL`` (or ``url`` and
    ``exchange``). Raises CatalogError when the bus cannot be reached or refuses a message."""
    url = url if url is not None else getattr(settings, "LEVEL2_ISB_URL", "")
    if not url:
        return CatalogResult(skipped=True)
    exchange_name = exchange or getattr(settings, "LEVEL2_ISB_EXCHANGE", "") or DEFAULT_EXCHANGE
    bus_exchange = Exchange(exchange_name, type="direct", durable=True)
    messages = [
        (
            FRAME_ROUTING_KEY,
            {
                "bucket": bucket,
                "objectName": f"{proposal_id}/{inversion_dir}/{name}",
                "incrementDatasetCatalogReceiptCount": False,
                "conversationId": conversation_id,
            },
        )
        for name in fits_names
    ]
    messages.append(
        (
            OBJECT_ROUTING_KEY,
            {
                "bucket": bucket,
                "objectName": asdf_key,
                "objectType": "ASDF",
                "groupId": inversion_id,
                "groupName": "DATASET",
                "incrementDatasetCatalogReceiptCount": False,
                "conversationId": conversation_id,
            },
        )
    )
    connection = Connection(
        url,
        connect_timeout=CONNECT_TIMEOUT_S,
        # confirm_publish: each publish waits for the broker's ack (py-amqp). The retry
        # policy here also bounds kombu's own reconnects, which are unbounded by default.
        transport_options={"confirm_publish": True, **RETRY_POLICY},
    )
    with connection:
        bus_errors = (
            OperationalError,
            MessageNacked,
            *connection.connection_errors,
            *connection.channel_errors,
        )
        try:
            connection.ensure_connection(**RETRY_POLICY)
            producer = Producer(connection, exchange=bus_exchange)
            for routing_key, body in messages:
                producer.publish(
                    body,
                    routing_key=routing_key,
                    serializer="json",
                    delivery_mode=2,
                    declare=[bus_exchange],
                    confirm_timeout=CONFIRM_TIMEOUT_S,
                    retry=True,
                    retry_policy=RETRY_POLICY,
                )
        except bus_errors as error:
            raise CatalogError(
                f"The interservice bus at {connection.as_uri()} could not be reached or did not "
                f"accept the catalog messages ({type(error).__name__}: {error}). "
                "Try again once the bus is up."
            ) from error
    return CatalogResult(frame_messages=len(fits_names), object_messages=1)
