import pytest

from appliance.storage import read_text, write_text_atomic


def test_write_and_read(tmp_path):
    path = tmp_path / "deep" / "file"
    write_text_atomic(path, "hello\n", mode=0o600)
    assert read_text(path) == "hello"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in path.parent.iterdir()] == ["file"]


def test_replace_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "file"
    write_text_atomic(path, "one")
    write_text_atomic(path, "two")
    assert read_text(path) == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_missing_file_reads_as_none(tmp_path):
    assert read_text(tmp_path / "absent") is None


def test_failure_leaves_the_old_file(tmp_path):
    (tmp_path / "file").write_text("old")
    with pytest.raises(OSError):
        write_text_atomic(tmp_path / "file" / "inside", "new")  # parent is a file
    assert read_text(tmp_path / "file") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_write_bytes_atomic_replaces_whole_files_and_leaves_no_temporary(tmp_path):
    from appliance.storage import write_bytes_atomic

    path = tmp_path / "deep" / "x.bin"
    write_bytes_atomic(path, b"\x00first")
    write_bytes_atomic(path, b"\xffsecond", mode=0o600)
    assert path.read_bytes() == b"\xffsecond"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["x.bin"]
