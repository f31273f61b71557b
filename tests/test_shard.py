"""``--shard K/M``: M array-job tasks (Slurm, a Kubernetes Indexed Job) that together do one run's work.

Shard K of M gets a contiguous range of the samples (``generate``) or of the
inputs sorted by output name (``translate``) and writes it under the names the
whole run gives it, so the M shards' folders together hold exactly the whole
run's files, byte for byte; only each folder's manifest differs, as it records
its shard.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_checkpoint, make_translator_run
from gantool.errors import UsageError
from gantool.runtime import writers
from gantool.runtime.image_io import MANIFEST as TRANSLATE_MANIFEST
from gantool.runtime.shards import Shard
from gantool.runtime.writers import MANIFEST

SHARDS = 4
BAD_SHARDS = ["0/4", "5/4", "1/0", "x", "2", "-1/4", "1/2/3", ""]


@pytest.fixture(scope="module")
def gan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("shard-gan") / "run")


@pytest.fixture(scope="module")
def cyclegan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_translator_run(tmp_path_factory.mktemp("shard-cyclegan") / "run")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seven small images in nested folders, of two sizes and two formats."""
    root = tmp_path_factory.mktemp("shard-photos") / "photos"
    rng = np.random.default_rng(0)
    for name, size in [("b.png", 16), ("a.png", 16), ("z.jpg", 20), ("2024/c.png", 16), ("2024/a.png", 12),
                       ("2024/deep/q.png", 16), ("m.png", 16)]:  # fmt: skip
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / name)
    return root


def _images(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but the manifests, by relative path."""
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in {MANIFEST, TRANSLATE_MANIFEST}]
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def _union(folders: list[Path]) -> dict[str, bytes]:
    """The shards' files merged, refusing a name two shards both wrote."""
    merged: dict[str, bytes] = {}
    for folder in folders:
        files = _images(folder)
        assert not merged.keys() & files.keys(), "two shards wrote the same file"
        merged |= files
    return merged


def _one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _generate(cli, model: Path, out: Path, *flags: str):  # type: ignore[no-untyped-def]
    return cli("generate", model, "-n", "10", "--batch-size", "4", "--seed", "3", "--backend", "torch", "--out", out,
               *flags)  # fmt: skip


# ---- the split ----


def test_shards_tile_the_range_in_order_and_differ_by_at_most_one() -> None:
    assert [Shard(k, 4).range(10) for k in range(1, 5)] == [(0, 3), (3, 6), (6, 8), (8, 10)]  # first ones take more
    assert [Shard(k, 4).range(2) for k in range(1, 5)] == [(0, 1), (1, 2), (2, 2), (2, 2)]  # empty last shards
    for total in range(30):
        for count in range(1, 12):
            ranges = [Shard(k, count).range(total) for k in range(1, count + 1)]
            assert ranges[0][0] == 0 and ranges[-1][1] == total
            assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
            sizes = [stop - start for start, stop in ranges]
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_shard_syntax() -> None:
    assert Shard.parse("2/4") == Shard(2, 4) and str(Shard.parse(" 1 / 1 ")) == "1/1"
    for text in BAD_SHARDS:
        with pytest.raises(UsageError):
            Shard.parse(text)


# ---- generate ----


def test_four_generate_shards_are_the_unsharded_run_byte_for_byte(cli, gan: Path, tmp_path: Path) -> None:
    whole = _generate(cli, gan, tmp_path / "whole")
    assert whole.exit_code == 0, whole.stderr
    shards = [tmp_path / f"shard-{k}" for k in range(1, SHARDS + 1)]
    for k, out in enumerate(shards, 1):
        result = _generate(cli, gan, out, "--shard", f"{k}/{SHARDS}")
        assert result.exit_code == 0, result.stderr
        assert f"(shard {k}/{SHARDS}: samples " in result.stderr.splitlines()[-1]
    assert sorted(p.name for p in shards[1].iterdir()) == [MANIFEST, "000003.png", "000004.png", "000005.png"]
    expected = _images(tmp_path / "whole")
    assert sorted(_union(shards)) == sorted(expected) == [f"{i:06d}.png" for i in range(10)]  # global names
    assert _union(shards) == expected  # byte for byte

    manifest = json.loads((shards[2] / MANIFEST).read_text())
    assert manifest["shard"] == "3/4" and manifest["shard_range"] == [6, 8] and manifest["n"] == 10
    assert json.loads((tmp_path / "whole" / MANIFEST).read_text())["shard"] is None


def test_npz_shards_record_their_global_indices(cli, gan: Path, tmp_path: Path) -> None:
    assert _generate(cli, gan, tmp_path / "whole.npz").exit_code == 0
    parts = []
    for k in range(1, SHARDS + 1):
        assert _generate(cli, gan, tmp_path / f"part-{k}.npz", "--shard", f"{k}/{SHARDS}").exit_code == 0
        parts.append(np.load(tmp_path / f"part-{k}.npz"))
    assert [str(part["shard"]) for part in parts] == ["1/4", "2/4", "3/4", "4/4"]
    assert np.array_equal(np.concatenate([part["indices"] for part in parts]), np.arange(10))
    with np.load(tmp_path / "whole.npz") as whole:
        assert np.array_equal(np.concatenate([part["images"] for part in parts]), whole["images"])


def test_a_grid_cannot_be_sharded(cli, gan: Path, tmp_path: Path) -> None:
    result = _generate(cli, gan, tmp_path / "grid.png", "--shard", "1/4")
    assert result.exit_code == 2 and "folder or .npz" in _one_error_line(result)
    assert not (tmp_path / "grid.png").exists()


def test_an_empty_shard_succeeds_and_writes_nothing(cli, gan: Path, tmp_path: Path) -> None:
    """More tasks than samples: the idle tasks must not fail the array job."""
    result = cli("generate", gan, "-n", "3", "--shard", "4/4", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip() == "shard 4/4 of 3 samples is empty (more shards than samples): nothing to write"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["generate", "translate"])
@pytest.mark.parametrize("shard", BAD_SHARDS)
def test_a_bad_shard_is_refused_in_one_line(
    cli, gan: Path, cyclegan: Path, photos: Path, tmp_path: Path, command: str, shard: str
) -> None:
    model, inputs = (gan, []) if command == "generate" else (cyclegan, [photos])
    result = cli(command, model, *inputs, "--shard", shard, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert _one_error_line(result).startswith("error: --shard ")
    assert not (tmp_path / "out").exists()


def test_a_shard_resumes_but_not_as_another_shard(cli, gan: Path, tmp_path: Path) -> None:
    out = tmp_path / "shard-2"
    assert _generate(cli, gan, out, "--shard", "2/4").exit_code == 0
    complete = _images(out)
    (out / "000004.png").unlink()
    resumed = _generate(cli, gan, out, "--shard", "2/4", "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert "wrote 1 images (shard 2/4: samples 3..5 of 10)" in resumed.stderr
    assert "skipped 2 already complete" in resumed.stderr and _images(out) == complete

    for flags, recorded in [(["--shard", "3/4"], "'2/4', not '3/4'"), ([], "'2/4', not None")]:  # None: unsharded
        refused = _generate(cli, gan, out, *flags, "--resume")
        assert refused.exit_code == 2 and f"written with shard {recorded}" in refused.stderr.splitlines()[-1]
    assert _images(out) == complete


def test_an_interrupted_shard_prints_the_command_that_finishes_it(
    cli, gan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, encoded = writers.png_bytes, []

    def interrupt_after_one(image: np.ndarray) -> bytes:
        encoded.append(1)
        if len(encoded) == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return real(image)

    out = tmp_path / "shard-1"
    with monkeypatch.context() as patch:
        patch.setattr(writers, "png_bytes", interrupt_after_one)
        stopped = _generate(cli, gan, out, "--batch-size", "1", "--shard", "1/4")
    assert stopped.exit_code == 130
    line = stopped.stderr.strip().splitlines()[-1]
    assert "of 3 samples of shard 1/4 are complete" in line
    again = shlex.split(line.split("resume with: ")[1])
    assert again[again.index("--shard") + 1] == "1/4"
    assert cli(*again[1:]).exit_code == 0
    assert sorted(_images(out)) == ["000000.png", "000001.png", "000002.png"]


# ---- translate ----


def _translate(cli, model: Path, out: Path, *inputs: Path | str, flags: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    return cli("translate", model, *inputs, "--backend", "torch", "--batch-size", "2", "--out", out, *flags)


def test_four_translate_shards_are_the_unsharded_run_byte_for_byte(
    cli, cyclegan: Path, photos: Path, tmp_path: Path
) -> None:
    whole = _translate(cli, cyclegan, tmp_path / "whole", photos)
    assert whole.exit_code == 0, whole.stderr
    shards = [tmp_path / f"shard-{k}" for k in range(1, SHARDS + 1)]
    for k, out in enumerate(shards, 1):
        result = _translate(cli, cyclegan, out, photos, flags=("--shard", f"{k}/{SHARDS}"))
        assert result.exit_code == 0, result.stderr
    # 7 inputs sorted by output name: 2024/a 2024/c | 2024/deep/q a | b m | z
    assert sorted(_images(shards[0])) == ["2024/a.png", "2024/c.png"]
    assert sorted(_images(shards[3])) == ["z.png"]
    expected = _images(tmp_path / "whole")
    assert sorted(_union(shards)) == sorted(expected) and len(expected) == 7
    assert _union(shards) == expected  # byte for byte
    manifest = json.loads((shards[1] / TRANSLATE_MANIFEST).read_text())
    assert (manifest["shard"], manifest["shard_inputs"], manifest["shard_range"]) == ("2/4", 7, [2, 4])


def test_the_split_does_not_depend_on_the_order_of_the_arguments(
    cli, cyclegan: Path, photos: Path, tmp_path: Path
) -> None:
    files = [photos / "m.png", photos / "b.png", photos / "z.jpg", photos / "a.png"]
    for name, inputs in [("given", files), ("reversed", files[::-1])]:
        assert _translate(cli, cyclegan, tmp_path / name, *inputs, flags=("--shard", "1/2")).exit_code == 0
        assert sorted(_images(tmp_path / name)) == ["a.png", "b.png"]


def test_a_translate_shard_resumes_but_not_as_another_shard(cli, cyclegan: Path, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "shard-3"
    assert _translate(cli, cyclegan, out, photos, flags=("--shard", "3/4")).exit_code == 0
    complete = _images(out)
    (out / "m.png").unlink()
    resumed = _translate(cli, cyclegan, out, photos, flags=("--shard", "3/4", "--resume"))
    assert resumed.exit_code == 0, resumed.stderr
    assert "wrote 1 images (shard 3/4: inputs 4..5 of 7)" in resumed.stderr and _images(out) == complete
    refused = _translate(cli, cyclegan, out, photos, flags=("--shard", "1/4", "--resume"))
    assert refused.exit_code == 2 and "written with shard '3/4', not '1/4'" in refused.stderr.splitlines()[-1]
    assert _images(out) == complete
