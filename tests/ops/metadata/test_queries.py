"""Every query file validates against the project's schema, and against the store's full
schema when it is at hand (it is not part of the repository)."""

from pathlib import Path

import pytest
from graphql import build_schema, parse, validate

import ops.metadata
from ops.metadata.client import QUERIES_DIR

PROJECT_SCHEMA = Path(ops.metadata.__file__).parent / "schema.graphql"
FULL_SCHEMA = Path(__file__).resolve().parents[4] / "shared" / "metadata-store" / "metadata.graphql"
QUERY_FILES = sorted(QUERIES_DIR.glob("*.graphql"))


def test_there_are_query_files():
    assert {path.stem for path in QUERY_FILES} >= {
        "dataset_list",
        "datasets_by_proposal",
        "datasets_by_id",
        "experiment_descriptions",
        "create_l2_inversion_inventory",
    }


@pytest.mark.parametrize("path", QUERY_FILES, ids=lambda path: path.name)
def test_query_validates_against_the_project_schema(path):
    assert validate(build_schema(PROJECT_SCHEMA.read_text()), parse(path.read_text())) == []


@pytest.mark.skipif(not FULL_SCHEMA.exists(), reason="the metadata store's full schema is not at hand")
@pytest.mark.parametrize("path", QUERY_FILES, ids=lambda path: path.name)
def test_query_validates_against_the_store_schema(path):
    assert validate(build_schema(FULL_SCHEMA.read_text()), parse(path.read_text())) == []


@pytest.mark.skipif(not FULL_SCHEMA.exists(), reason="the metadata store's full schema is not at hand")
def test_the_project_schema_types_match_the_store_schema():
    """Each field kept in the project's schema has the store's type (nullability included)."""
    full = build_schema(FULL_SCHEMA.read_text())
    ours = build_schema(PROJECT_SCHEMA.read_text())
    for name, our_type in ours.type_map.items():
        if name.startswith("__") or not hasattr(our_type, "fields"):
            continue
        their_type = full.type_map[name]
        for field_name, field in our_type.fields.items():
            assert str(field.type) == str(their_type.fields[field_name].type), f"{name}.{field_name}"
            for arg_name, arg in getattr(field, "args", {}).items():
                assert str(arg.type) == str(their_type.fields[field_name].args[arg_name].type)


def test_a_wrong_query_does_not_validate():
    """The validation above can fail: a field the schema lacks is refused."""
    errors = validate(build_schema(PROJECT_SCHEMA.read_text()), parse("{ datasetInventories { nope } }"))
    assert errors and "nope" in errors[0].message
