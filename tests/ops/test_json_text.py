"""ops.json_text.loads reads JSON texts as json.loads reads them."""

import json

from ops import json_text


def test_a_number_beyond_a_float_reads_as_json_loads_reads_it():
    # jsonb keeps any number as written; msgspec refuses what json.loads reads as infinity.
    text = '{"measured": 1' + "0" * 400 + '.5, "id": "ip"}'
    assert json_text.loads(text) == {"measured": float("inf"), "id": "ip"}


def test_other_values_read_as_json_loads_reads_them():
    text = '{"big": 123456789012345678901234567890, "small": 2.5e-320, "float": 1.0, "text": "\\u00e9"}'
    assert json_text.loads(text) == json.loads(text)
    assert type(json_text.loads(text)["float"]) is float
