"""The ASDF against dkist's Level 2 schema, and its tags and key names against the real sample
(inv.PUYATW, written by the data center's service and shipped inside the dkist package)."""

import gzip
import re
from importlib import resources

import asdf
import pytest
import yaml


def yaml_tree(path) -> yaml.Node:
    raw = gzip.decompress(path.read_bytes()) if str(path).endswith(".gz") else path.read_bytes()
    return yaml.compose(raw[: raw.index(b"\n...\n")].decode(), Loader=yaml.SafeLoader)


def child(node: yaml.MappingNode, key: str) -> yaml.Node:
    return next(value for name, value in node.value if name.value == key)


def keys(node: yaml.MappingNode) -> set[str]:
    return {name.value for name, _ in node.value}


def tag_name(node: yaml.Node) -> str:
    return re.sub(r"-\d+\.\d+\.\d+$", "", node.tag)


@pytest.fixture(scope="module")
def sample():
    path = resources.files("dkist") / "data" / "test" / "test_L2_inversion.asdf.gz"
    with resources.as_file(path) as file:
        return child(yaml_tree(file), "inversion")


@pytest.fixture(scope="module")
def ours(generated):
    return child(yaml_tree(generated.asdf_path), "inversion")


def test_validates_against_dkists_level_2_schema(generated):
    schema = resources.files("dkist.io") / "level_2_dataset_schema.yaml"
    with (
        resources.as_file(schema) as schema_path,
        asdf.open(generated.asdf_path, custom_schema=schema_path) as file,
    ):
        file.validate()


def test_root_and_collections_are_tagged_as_in_the_sample(ours, sample):
    assert ours.tag == sample.tag == "asdf://dkist.nso.edu/tags/inversion-0.1.0"
    assert (
        child(ours, "profiles").tag
        == child(sample, "profiles").tag
        == "asdf://dkist.nso.edu/tags/profiles-0.1.0"
    )
    assert tag_name(child(ours, "quantities")) == tag_name(child(sample, "quantities"))
    assert {"meta", "quantities", "profiles"} <= keys(ours)


def test_inventory_keys_match_the_sample(ours, sample):
    assert keys(child(child(ours, "meta"), "inventory")) == keys(child(child(sample, "meta"), "inventory"))
    assert tag_name(child(child(ours, "meta"), "headers")) == tag_name(
        child(child(sample, "meta"), "headers")
    )


def test_quantity_items_match_the_sample(ours, sample):
    our_items, sample_items = (child(child(tree, "quantities"), "items") for tree in (ours, sample))
    assert keys(our_items) == keys(sample_items)
    for name, node in our_items.value:
        reference = child(sample_items, name.value)
        assert tag_name(node) == tag_name(reference) == "asdf://dkist.nso.edu/tags/dataset"
        assert keys(node) == keys(reference)
        assert tag_name(child(node, "data")) == tag_name(child(reference, "data"))
        assert keys(child(node, "data")) == keys(child(reference, "data"))
        assert child(child(node, "data"), "target").value == child(child(reference, "data"), "target").value
        assert keys(child(node, "meta")) == keys(child(reference, "meta"))


def test_profile_items_match_the_sample(ours, sample):
    our_items, sample_items = (child(child(tree, "profiles"), "items") for tree in (ours, sample))
    assert keys(our_items) == keys(sample_items)
    for _, node in our_items.value:
        assert tag_name(node) == "asdf://dkist.nso.edu/tags/dataset"
        assert keys(child(node, "data")) == {"fileuris", "target", "datatype", "shape"}
        assert child(child(node, "data"), "datatype").value == "float32"
