"""Paths from outside kept inside their root: normalised, resolved, links out refused."""

import pytest

from inversions.paths import PathRefused, clean_absolute_path, files_inside, inside


@pytest.mark.parametrize(
    ("typed", "cleaned"),
    [
        ("/", "/"),
        ("//etc/", "/etc/"),
        ("/runs//7/./", "/runs/7/"),
        ("/runs/7", "/runs/7"),
        ("/demo/x/../y/", "/demo/y/"),
        ("/demo/..", "/"),
    ],
)
def test_a_typed_path_is_normalised(typed, cleaned):
    assert clean_absolute_path(typed) == cleaned


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("/demo/../../..", "climbs above the collection's root"),
        ("/..", "climbs above the collection's root"),
        ("/runs/\x00/7", "NUL bytes"),
        ("runs/7", "not an absolute path"),
    ],
)
def test_a_path_that_leaves_the_root_or_is_no_path_is_refused(typed, reason):
    with pytest.raises(PathRefused, match=reason):
        clean_absolute_path(typed)


def test_inside_joins_ids_and_collection_paths_under_the_root(tmp_path):
    assert inside(tmp_path, "pid_1_2", "ABCDE") == tmp_path.resolve() / "pid_1_2" / "ABCDE"
    assert inside(tmp_path, "//etc/") == tmp_path.resolve() / "etc"
    assert inside(tmp_path, "/") == tmp_path.resolve()


@pytest.mark.parametrize("parts", [("..",), ("pid_1_2", "../../x"), ("/demo/../../..",), ("a\x00b",)])
def test_inside_refuses_parts_that_climb_out(tmp_path, parts):
    with pytest.raises(PathRefused):
        inside(tmp_path / "root", *parts)


def test_a_link_out_of_the_root_is_refused_and_one_within_is_followed(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "data").mkdir(parents=True)
    outside.mkdir()
    (root / "out").symlink_to(outside)
    (root / "alias").symlink_to(root / "data")

    with pytest.raises(PathRefused, match="leaves root/"):
        inside(root, "out", "secret")
    assert inside(root, "alias") == (root / "data").resolve()


def test_the_root_itself_may_be_a_link(tmp_path):
    (tmp_path / "mount").mkdir()
    (tmp_path / "root").symlink_to(tmp_path / "mount")

    assert inside(tmp_path / "root", "x") == (tmp_path / "mount" / "x").resolve()


def test_files_inside_lists_the_files_and_refuses_one_that_links_out(tmp_path):
    root = tmp_path / "root"
    folder = root / "results"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.fits").write_bytes(b"a")
    (folder / "sub" / "b.fits").write_bytes(b"b")
    (folder / ".hidden").write_bytes(b"h")
    assert [path.name for path in files_inside(root, folder)] == ["a.fits", "b.fits"]

    (tmp_path / "secret").write_text("secret")
    (folder / "sub" / "c.fits").symlink_to(tmp_path / "secret")
    with pytest.raises(PathRefused, match=r"sub/c.fits in results/ links to a place outside root/"):
        files_inside(root, folder)


@pytest.mark.parametrize("target", ["folder", "missing"])
def test_files_inside_refuses_a_linked_folder_or_a_dangling_link_out(tmp_path, target):
    root = tmp_path / "root"
    (root / "results").mkdir(parents=True)
    (tmp_path / "folder").mkdir()
    (root / "results" / "x").symlink_to(tmp_path / target)

    with pytest.raises(PathRefused, match="links to a place outside"):
        files_inside(root, root / "results")
