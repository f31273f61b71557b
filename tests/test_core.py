"""The shared core: spec validation, deterministic latents, pixel conversion, atomic files, data readers."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_gan_spec
from gantool.checkpoint import read_spec
from gantool.data import find_mnist, load_digits_mnist_style, load_image_folder, read_idx_images
from gantool.errors import ArtifactError, GantoolError, UsageError
from gantool.files import atomic_directory, atomic_write_text, check_output_path
from gantool.images import from_uint8, grid, to_uint8
from gantool.latents import latent_batch
from gantool.spec import ModelSpec


def test_spec_round_trips_through_json() -> None:
    spec = tiny_gan_spec()
    assert ModelSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(
    "change, message",
    [
        ({"extra": 1}, "unknown keys"),
        ({"format": "other"}, "not a gantool model spec"),
        ({"kind": "vae"}, "kind"),
        ({"latent_dim": 10**9}, "latent_dim"),
        ({"height": 0}, "height"),
        ({"channels": True}, "channels"),
        ({"arch_params": {"hidden": "x"}}, "hidden"),
        ({"value_range": [1, -1]}, "value_range"),
        ({"provenance": {"nested": {"a": 1}}}, "provenance"),
    ],
)
def test_spec_refuses_anything_outside_the_schema(change: dict, message: str) -> None:
    data = {**tiny_gan_spec().to_dict(), **change}
    with pytest.raises(ArtifactError, match=message):
        ModelSpec.from_json(json.dumps(data))


def test_spec_refuses_oversized_or_broken_json() -> None:
    with pytest.raises(ArtifactError, match="larger than"):
        ModelSpec.from_json("{" + " " * 100_000 + "}")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        ModelSpec.from_json("{not json")


def test_latent_of_a_sample_depends_only_on_seed_and_index() -> None:
    whole = latent_batch(seed=7, start=0, count=10, latent_dim=5)
    assert np.array_equal(whole[4:9], latent_batch(seed=7, start=4, count=5, latent_dim=5))
    assert not np.allclose(whole, latent_batch(seed=8, start=0, count=10, latent_dim=5))
    assert whole.dtype == np.float32 and whole.shape == (10, 5)


def test_pixels_map_linearly_from_the_value_range() -> None:
    outputs = np.array([-1.0, 0.0, 1.0, 2.0], dtype=np.float32).reshape(1, 1, 2, 2)
    pixels = to_uint8(outputs, (-1.0, 1.0))
    assert pixels.shape == (1, 2, 2, 1)
    assert pixels.ravel().tolist() == [0, 128, 255, 255]
    assert np.allclose(from_uint8(pixels, (-1.0, 1.0))[0, 0, 0], [-1.0, 1 / 255.0], atol=1e-6)


def test_grid_tiles_images_in_a_square() -> None:
    tiles = grid(np.full((5, 4, 4, 1), 255, np.uint8), pad=1)
    assert tiles.shape == (2 * 5 + 1, 3 * 5 + 1, 1)  # 3 columns, 2 rows


def test_existing_output_is_refused_without_force(tmp_path: Path) -> None:
    target = tmp_path / "out.npz"
    target.write_text("keep me")
    with pytest.raises(UsageError, match="--force"):
        check_output_path(target, force=False)
    check_output_path(target, force=True)
    with pytest.raises(UsageError, match="not a directory"):
        check_output_path(target / "inside.png", force=False)


def test_atomic_directory_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "images"
    with pytest.raises(RuntimeError), atomic_directory(target, force=False) as staging:
        (staging / "0.png").write_bytes(b"x")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_directory(target, force=False) as staging:
        atomic_write_text(staging / "0.txt", "done")
    assert (target / "0.txt").read_text() == "done"


def test_digits_are_presented_like_mnist() -> None:
    digits = load_digits_mnist_style()
    assert digits.shape == (1797, 28, 28, 1) and digits.dtype == np.uint8
    assert digits[:, :2].max() == 0 and digits[:, -2:].max() == 0  # an empty margin, as in MNIST
    assert digits.max() == 255


def _idx_bytes(count: int, rows: int, cols: int) -> bytes:
    pixels = np.arange(count * rows * cols, dtype=np.uint8).tobytes()
    return struct.pack(">IIII", 0x803, count, rows, cols) + pixels


def test_idx_files_are_read_plain_or_gzipped(tmp_path: Path) -> None:
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(3, 28, 28)))
    found = find_mnist(tmp_path)
    assert found is not None
    assert read_idx_images(found).shape == (3, 28, 28, 1)


def test_truncated_or_foreign_idx_files_are_refused(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated"
    truncated.write_bytes(_idx_bytes(3, 28, 28)[:-10])
    with pytest.raises(GantoolError, match="truncated"):
        read_idx_images(truncated)
    foreign = tmp_path / "foreign"
    foreign.write_bytes(b"\x00" * 64)
    with pytest.raises(GantoolError, match="not an IDX image file"):
        read_idx_images(foreign)


def test_image_folder_converts_and_reports_unreadable_files(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "a.png")
    Image.new("L", (16, 16), 128).save(tmp_path / "b.jpg")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    images, skipped = load_image_folder(tmp_path, size=12, channels=None)
    assert images.shape == (2, 12, 12, 3)
    assert skipped == [str(tmp_path / "broken.png")]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="no images"):
        load_image_folder(empty, size=12, channels=1)


def test_read_spec_refuses_files_that_are_not_gantool_checkpoints(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01garbage")
    with pytest.raises(ArtifactError, match="not a readable safetensors"):
        read_spec(garbage)
    from safetensors.numpy import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros(2, np.float32)}, str(foreign))
    with pytest.raises(ArtifactError, match="not a gantool checkpoint"):
        read_spec(foreign)


def test_written_artifacts_are_readable_by_others_as_the_umask_allows(tmp_path: Path) -> None:
    import os

    from gantool.files import atomic_save

    def owner_only_writer(tmp: Path) -> None:  # like safetensors: replaces the file, mode 0600
        tmp.unlink()
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)

    target = tmp_path / "model.safetensors"
    atomic_save(target, owner_only_writer)
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # 0o644 under the usual umask 022
