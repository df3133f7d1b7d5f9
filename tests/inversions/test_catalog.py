"""Catalog messages, received from a queue bound to the exchange: on kombu's in-memory
transport, and once on the machine's RabbitMQ when it is up."""

import json
import time
from uuid import uuid4

import pytest
from kombu import Connection, Exchange, Queue, binding

from inversions.catalog import CatalogError, CatalogResult, send_catalog_messages

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
PUBLISH = {
    "bucket": "data",
    "proposal_id": "pid_2_10",
    "inversion_dir": "inv.PUYATW",
    "inversion_id": "inv.PUYATW",
    "fits_names": ["INV_PUYATW_001_L2.fits", "INV_PUYATW_002_L2.fits"],
    "asdf_key": "pid_2_10/inv.PUYATW/INV_PUYATW_L2_metadata.asdf",
    "conversation_id": "6f1c0a52-0d7e-4d3a-9d7c-0e5b1f3a2b11",
}
FRAME = {
    "bucket": "data",
    "incrementDatasetCatalogReceiptCount": False,
    "conversationId": PUBLISH["conversation_id"],
}
EXPECTED = [
    ("catalog.frame.m", {**FRAME, "objectName": "pid_2_10/inv.PUYATW/INV_PUYATW_001_L2.fits"}),
    ("catalog.frame.m", {**FRAME, "objectName": "pid_2_10/inv.PUYATW/INV_PUYATW_002_L2.fits"}),
    (
        "catalog.object.m",
        {
            "bucket": "data",
            "objectName": "pid_2_10/inv.PUYATW/INV_PUYATW_L2_metadata.asdf",
            "objectType": "ASDF",
            "groupId": "inv.PUYATW",
            "groupName": "DATASET",
            "incrementDatasetCatalogReceiptCount": False,
            "conversationId": PUBLISH["conversation_id"],
        },
    ),
]


class Listener:
    """A queue bound to both catalog routing keys of one exchange (a new name per test, so
    that tests never see each other's messages)."""

    def __init__(self, url: str):
        self.url = url
        self.exchange = Exchange(f"level2.test.{uuid4().hex}", type="direct", durable=True)
        self.connection = Connection(url, connect_timeout=1)
        self.queue = Queue(
            f"{self.exchange.name}.q",
            bindings=[
                binding(self.exchange, routing_key=key) for key in ("catalog.frame.m", "catalog.object.m")
            ],
            auto_delete=True,
        )(self.connection.default_channel)
        self.queue.declare()

    def received(self, *, expected: int = 0, wait_s: float = 5.0) -> list:
        """The messages in the queue; waits up to ``wait_s`` for ``expected`` of them (a real
        broker routes asynchronously)."""
        messages = []
        deadline = time.monotonic() + wait_s
        while True:
            message = self.queue.get(no_ack=True)
            if message is not None:
                messages.append(message)
            elif len(messages) >= expected or time.monotonic() > deadline:
                return messages
            else:
                time.sleep(0.05)

    def close(self) -> None:
        self.queue.delete()
        self.exchange(self.connection.default_channel).delete()
        self.connection.close()


@pytest.fixture
def memory_bus():
    listener = Listener("memory://")
    yield listener
    listener.close()


def assert_received_as_specified(messages) -> None:
    assert [(m.delivery_info["routing_key"], json.loads(m.body)) for m in messages] == EXPECTED
    assert all(m.content_type == "application/json" for m in messages)
    assert all(m.properties["delivery_mode"] == 2 for m in messages)


def test_one_message_per_fits_then_one_for_the_asdf(memory_bus):
    result = send_catalog_messages(**PUBLISH, url="memory://", exchange=memory_bus.exchange.name)

    assert result == CatalogResult(frame_messages=2, object_messages=1)
    assert_received_as_specified(memory_bus.received(expected=3))


def test_settings_name_the_bus_and_the_exchange(memory_bus, settings):
    settings.LEVEL2_ISB_URL = "memory://"
    settings.LEVEL2_ISB_EXCHANGE = memory_bus.exchange.name

    send_catalog_messages(**PUBLISH)

    assert len(memory_bus.received(expected=3)) == 3


def test_without_a_bus_configured_nothing_is_sent(memory_bus, settings):
    settings.LEVEL2_ISB_URL = ""
    settings.LEVEL2_ISB_EXCHANGE = memory_bus.exchange.name

    result = send_catalog_messages(**PUBLISH)

    assert result.skipped and result == CatalogResult(skipped=True)
    assert memory_bus.received(wait_s=0) == []


def test_a_bus_that_cannot_be_reached_is_a_clear_error():
    # Nothing listens on port 9 (discard) of localhost; the bounded retries take a few seconds.
    with pytest.raises(CatalogError) as raised:
        send_catalog_messages(**PUBLISH, url="amqp://guest:secret@127.0.0.1:9//")

    message = str(raised.value)
    assert message.startswith("The interservice bus at amqp://guest:**@127.0.0.1:9// could not be reached")
    assert "secret" not in message


def rabbitmq_is_up() -> bool:
    try:
        with Connection(RABBITMQ_URL, connect_timeout=1) as connection:
            connection.ensure_connection(max_retries=0)
    except Exception:
        return False
    return True


@pytest.mark.skipif(not rabbitmq_is_up(), reason="no RabbitMQ on 127.0.0.1:5672")
def test_rabbitmq_receives_the_messages_persistent_and_confirmed():
    listener = Listener(RABBITMQ_URL)
    try:
        result = send_catalog_messages(**PUBLISH, url=RABBITMQ_URL, exchange=listener.exchange.name)

        assert result.frame_messages == 2 and result.object_messages == 1
        assert_received_as_specified(listener.received(expected=3))
    finally:
        listener.close()
