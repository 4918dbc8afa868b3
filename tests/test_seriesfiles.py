from pathlib import Path
from unittest import mock

import pydicom
from pydicom.data import get_testdata_file

from casesync.files.hashing import gather_facts
from casesync.project.seriesfiles import natural_key, order_slices, resolve_root, select_files


def write_slices(folder: Path, numbering: dict[str, tuple[int | None, float]]) -> list[str]:
    """Copies of pydicom's CT_small.dcm with the given InstanceNumber and z position."""
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    for name, (instance, z) in numbering.items():
        if instance is None:
            source.pop("InstanceNumber", None)
        else:
            source.InstanceNumber = instance
        source.ImagePositionPatient = [0.0, 0.0, z]
        source.save_as(folder / name)
    return list(numbering)


def test_dicom_slices_sort_by_instance_number_not_name(tmp_path: Path) -> None:
    names = write_slices(tmp_path, {"a.dcm": (3, 0.0), "b.dcm": (1, 0.0), "c.dcm": (2, 0.0)})
    facts = gather_facts(tmp_path, names)
    assert order_slices(names, facts) == ["b.dcm", "c.dcm", "a.dcm"]


def test_equal_instance_numbers_sort_by_position_along_the_normal(tmp_path: Path) -> None:
    names = write_slices(tmp_path, {"a.dcm": (1, 5.0), "b.dcm": (1, -5.0), "c.dcm": (1, 0.0)})
    facts = gather_facts(tmp_path, names)
    assert order_slices(names, facts) == ["b.dcm", "c.dcm", "a.dcm"]


def test_missing_keys_keep_the_natural_name_order_they_came_in(tmp_path: Path) -> None:
    names = write_slices(
        tmp_path, {"s2.dcm": (None, 0.0), "s10.dcm": (None, 0.0), "s1.dcm": (4, 0.0)}
    )
    facts = gather_facts(tmp_path, names)
    assert order_slices(names, facts) == ["s1.dcm", "s2.dcm", "s10.dcm"]
    assert sorted(names, key=natural_key) == ["s1.dcm", "s2.dcm", "s10.dcm"]


def test_natural_key() -> None:
    assert sorted(["img10", "img2", "Img1"], key=natural_key) == ["Img1", "img2", "img10"]


def test_root_resolution() -> None:
    files = ["c/a/1.png", "c/a/2.png", "c/a/3.png", "c/a/4.png"]

    def rel(path: str) -> str:
        return path.removeprefix("c/")

    assert resolve_root(None, files, rel) == (2, None)
    assert resolve_root("middle", files, rel) == (2, None)
    assert resolve_root("first", files, rel) == (0, None)
    assert resolve_root("last", files, rel) == (3, None)
    assert resolve_root(1, files, rel) == (1, None)
    assert resolve_root("3.png", files, rel) == (2, None)
    assert resolve_root("a/4.png", files, rel) == (3, None)
    assert resolve_root(4, files, rel)[0] is None
    assert resolve_root("9.png", files, rel)[0] is None


def test_a_glob_reaching_outside_is_one_error_without_listing_anything(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    case_dir = root / "cases" / "a"
    case_dir.mkdir(parents=True)
    (tmp_path / "outside-1.png").write_bytes(b"x")
    with mock.patch("casesync.project.seriesfiles.recursive_glob") as listed:
        selection = select_files(root, case_dir, ["../../../*", "/etc/*"])
    listed.assert_not_called()
    assert [what for what, _ in selection.errors] == [
        "'../../../*' reaches outside the project root",
        "'/etc/*' reaches outside the project root",
    ]


def test_glob_matches_through_a_symlink_are_counted_not_named(tmp_path: Path) -> None:
    root, pictures = tmp_path / "repo", tmp_path / "pictures"
    case_dir = root / "cases" / "a"
    case_dir.mkdir(parents=True)
    pictures.mkdir()
    for name in ("outside-1.png", "outside-2.png"):
        (pictures / name).write_bytes(b"x")
    (case_dir / "inside.png").write_bytes(b"x")
    (case_dir / "linked").symlink_to(pictures)
    selection = select_files(root, case_dir, ["linked/*", "*.png"])
    assert [what for what, _ in selection.errors] == [
        "'linked/*' matches 2 file(s) outside the project root"
    ]
    assert selection.relpaths == ["cases/a/inside.png"]


def test_a_glob_does_not_walk_symlink_loops_in_a_series_folder(tmp_path: Path) -> None:
    case_dir = tmp_path / "cases" / "a"
    (case_dir / "xr" / "sub").mkdir(parents=True)
    for name in ("xr/1.png", "xr/sub/2.png"):
        (case_dir / name).write_bytes(b"x")
    for name in ("xr/loop", "xr/sub/loop"):
        (case_dir / name).symlink_to("..")
    selection = select_files(tmp_path, case_dir, "xr/**/*.png")
    assert selection.errors == []
    assert selection.relpaths == ["cases/a/xr/1.png", "cases/a/xr/sub/2.png"]


def test_a_symlinked_folder_a_star_matches_is_still_followed(tmp_path: Path) -> None:
    case_dir = tmp_path / "cases" / "a"
    (case_dir / "xr").mkdir(parents=True)
    (case_dir / "xr" / "1.png").write_bytes(b"x")
    (case_dir / "views").mkdir()
    (case_dir / "views" / "frontal").symlink_to("../xr")
    selection = select_files(tmp_path, case_dir, "views/*/*.png")
    assert selection.errors == []
    assert selection.relpaths == ["cases/a/xr/1.png"]


def test_an_unreadable_image_folder_is_an_error(tmp_path: Path) -> None:
    case_dir = tmp_path / "cases" / "a"
    (case_dir / "ct").mkdir(parents=True)
    denied = PermissionError(13, "Permission denied")
    with mock.patch("casesync.project.seriesfiles.os.scandir", side_effect=denied):
        selection = select_files(tmp_path, case_dir, "ct")
    assert selection.errors == [
        ("folder 'ct' cannot be read (Permission denied)", "fix its permissions (chmod u+rx)")
    ]


def test_a_glob_selects_the_files_it_matches_not_the_folders(tmp_path: Path) -> None:
    case_dir = tmp_path / "cases" / "a"
    (case_dir / "xr" / "sub").mkdir(parents=True)
    for name in ("xr/1.png", "xr/sub/2.png"):
        (case_dir / name).write_bytes(b"x")
    selection = select_files(tmp_path, case_dir, "xr/**")  # matches xr/ and xr/sub too
    assert selection.errors == []
    assert selection.relpaths == ["cases/a/xr/1.png", "cases/a/xr/sub/2.png"]
    only_folders = select_files(tmp_path, case_dir, "xr/s*")
    assert [what for what, _ in only_folders.errors] == ["'xr/s*' matches no file"]
