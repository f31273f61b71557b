"""TensorRT engine logic that needs no TensorRT: profiles from flags, batch splitting, the sidecar, compatibility."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from conftest import tiny_gan_spec, tiny_translator_spec
from gantool.engines import (
    MAX_BATCH,
    REBUILD_HINT,
    EngineInfo,
    MachineFacts,
    Profile,
    compatibility,
    parse_size,
    profile_for,
    sidecar_path,
    split_batch,
)
from gantool.errors import ArtifactError, UsageError

H100 = MachineFacts("10.13.0.35", "NVIDIA H100 80GB HBM3", "9.0", "12.9", "12.9")


def gan_info(**changes: Any) -> EngineInfo:
    """A valid sidecar for the tiny GAN, with ``changes`` applied."""
    spec = tiny_gan_spec()
    fields: dict[str, Any] = {
        "spec": spec,
        "precision": "fp16",
        "profile": profile_for(spec, "z", "images"),
        "built_on": H100,
        "source_onnx": "generator.onnx",
        "source_sha256": "a" * 64,
        "engine_sha256": "b" * 64,
        "max_abs_diff": 0.004,
        "extra": {"workspace_mb": 1024, "strongly_typed": False},
    }
    fields.update(changes)
    return EngineInfo(**fields)


def edited(info: EngineInfo, edit: Any) -> str:
    """The sidecar's JSON after ``edit(data)`` changed it in place."""
    data = json.loads(info.to_json())
    edit(data)
    return json.dumps(data)


# --- profiles from export flags ---------------------------------------------------------------------------------


def test_gan_profile_defaults_to_batches_1_8_64_of_latents() -> None:
    profile = profile_for(tiny_gan_spec(), "z", "images")
    assert (profile.min, profile.opt, profile.max) == ((1, 8), (8, 8), (64, 8))
    assert profile.max_batch == 64


def test_translator_profile_defaults_to_its_native_size() -> None:
    profile = profile_for(tiny_translator_spec(size=16), "images", "translated", (2, 4, 16))
    assert (profile.min, profile.opt, profile.max) == ((2, 3, 16, 16), (4, 3, 16, 16), (16, 3, 16, 16))


def test_translator_profile_sizes_fall_back_to_opt() -> None:
    spec = tiny_translator_spec(size=16)
    profile = profile_for(spec, "images", "translated", sizes=(None, (32, 48), None))
    assert profile.min[2:] == profile.opt[2:] == profile.max[2:] == (32, 48)
    ranged = profile_for(spec, "images", "translated", sizes=((8, 8), None, (64, 64)))
    assert (ranged.min[2:], ranged.opt[2:], ranged.max[2:]) == ((8, 8), (16, 16), (64, 64))


@pytest.mark.parametrize("batches", [(0, 1, 1), (2, 1, 4), (1, 8, 4), (1, 1, MAX_BATCH + 1)])
def test_impossible_batches_are_usage_errors(batches: tuple[int, int, int]) -> None:
    with pytest.raises(UsageError, match="min ≤ opt ≤ max"):
        profile_for(tiny_gan_spec(), "z", "images", batches)


def test_size_flags_are_refused_for_a_gan() -> None:
    with pytest.raises(UsageError, match="CycleGAN translators only"):
        profile_for(tiny_gan_spec(), "z", "images", sizes=(None, (32, 32), None))


@pytest.mark.parametrize(
    "sizes",
    [((6, 8), None, None), (None, (30, 32), None), (None, None, (8192, 8192)), ((32, 32), (16, 16), None)],
    ids=["too-small", "not-multiple-of-4", "too-large", "min-above-opt"],
)
def test_bad_translator_sizes_are_usage_errors(sizes: Any) -> None:
    with pytest.raises(UsageError):
        profile_for(tiny_translator_spec(size=16), "images", "translated", sizes=sizes)


@pytest.mark.parametrize("text, size", [("256", (256, 256)), ("192x256", (192, 256)), ("64×32", (64, 32))])
def test_parse_size(text: str, size: tuple[int, int]) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "big", "1x2x3", "12x"])
def test_parse_size_refuses_junk(text: str) -> None:
    with pytest.raises(UsageError, match="not N or HxW"):
        parse_size(text)


def test_item_shape_outside_the_profile_says_how_to_rebuild() -> None:
    profile = profile_for(tiny_translator_spec(size=16), "images", "translated", sizes=((8, 8), None, (32, 32)))
    profile.check_item_shape((100, 3, 32, 8))  # any batch: batches are split, not refused
    with pytest.raises(UsageError, match="64×64 image is outside the engine's profile .8×8 to 32×32.*--max-size"):
        profile.check_item_shape((1, 3, 64, 64))
    with pytest.raises(UsageError, match="rank-4"):
        profile.check_item_shape((1, 3, 16))


# --- batch splitting ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "count, max_batch, chunks",
    [
        (0, 8, []),
        (5, 8, [(0, 5)]),
        (8, 8, [(0, 8)]),
        (20, 8, [(0, 8), (8, 16), (16, 20)]),
        (3, 1, [(0, 1), (1, 2), (2, 3)]),
    ],
)
def test_split_batch_covers_every_sample_once(count: int, max_batch: int, chunks: list[tuple[int, int]]) -> None:
    assert split_batch(count, max_batch) == chunks


def test_split_batch_needs_a_positive_max() -> None:
    with pytest.raises(ValueError):
        split_batch(4, 0)


# --- the sidecar ------------------------------------------------------------------------------------------------


def test_sidecar_sits_beside_the_engine(tmp_path: Any) -> None:
    assert sidecar_path(tmp_path / "generator.fp16.engine") == tmp_path / "generator.fp16.engine.json"


def test_sidecar_round_trips() -> None:
    info = gan_info()
    assert EngineInfo.from_json(info.to_json()) == info
    translator = tiny_translator_spec()
    other = gan_info(spec=translator, profile=profile_for(translator, "images", "translated"))
    assert EngineInfo.from_json(other.to_json().encode()) == other


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(surprise=1), "unknown: \\['surprise'\\]"),
        (lambda d: d.pop("engine_sha256"), "missing: \\['engine_sha256'\\]"),
        (lambda d: d.update(format="something.else"), "not a gantool engine sidecar"),
        (lambda d: d.update(version=99), "version 99 is not supported"),
        (lambda d: d.update(version=True), "version True is not supported"),
        (lambda d: d.update(engine_sha256="B" * 64), "engine_sha256 is not a sha256"),
        (lambda d: d.update(source_sha256="abc"), "source_sha256 is not a sha256"),
        (lambda d: d.update(precision="int4"), "precision must be fp16, fp32 or int8"),
        (lambda d: d.update(max_abs_diff=-1), "max_abs_diff"),
        (lambda d: d.update(extra={"nested": {"x": {"deeper": 1}}}), "extra must map names to plain values"),
        (lambda d: d["profile"].update(max=[10**9, 8]), "lists of 2 to 4 positive integers"),
        (lambda d: d["profile"].update(min=[0, 8]), "lists of 2 to 4 positive integers"),
        (lambda d: d["profile"].update(opt=[128, 8]), "min ≤ opt ≤ max"),
        (lambda d: d["profile"].update(min=[1, 9], opt=[8, 9], max=[64, 9]), "does not match its model spec"),
        (lambda d: d["profile"].update(extra=True), "exactly: input, output, min, opt, max"),
        (lambda d: d["built_on"].update(gpu="x"), "'built_on' must have exactly"),
        (lambda d: d["spec"].update(kind="diffusion"), "kind 'diffusion' is not one of"),
    ],
    ids=[
        "unknown-key", "missing-key", "wrong-format", "future-version", "boolean-version", "uppercase-hash", "short-hash",
        "bad-precision", "negative-diff", "nested-extra", "absurd-batch", "zero-batch", "opt-above-max",
        "latent-contradicts-spec", "profile-extra-key", "built-on-extra-key", "bad-spec",
    ],
)  # fmt: skip
def test_sidecar_parsing_is_strict(edit: Any, message: str) -> None:
    with pytest.raises(ArtifactError, match=message):
        EngineInfo.from_json(edited(gan_info(), edit), where="run/generator.fp16.engine.json")


def test_sidecar_errors_name_the_file_and_refuse_junk() -> None:
    with pytest.raises(ArtifactError, match="^run/x.json is not valid JSON$"):
        EngineInfo.from_json("{", where="run/x.json")
    with pytest.raises(ArtifactError, match="larger than"):
        EngineInfo.from_json(" " * (256 * 1024 + 1))
    with pytest.raises(ArtifactError, match="^run/x.json: not a gantool engine sidecar"):
        EngineInfo.from_json("[]", where="run/x.json")


# --- compatibility ----------------------------------------------------------------------------------------------


def test_same_machine_is_compatible() -> None:
    verdict = compatibility(H100, H100)
    assert verdict.ok and verdict.warnings == ()


def test_a_new_tensorrt_build_number_of_the_same_release_is_fine() -> None:
    assert compatibility(H100, dataclasses.replace(H100, tensorrt_version="10.13.0.99")).ok


def test_another_tensorrt_release_is_refused() -> None:
    verdict = compatibility(H100, dataclasses.replace(H100, tensorrt_version="10.14.1.48"))
    assert verdict.errors == ("built with TensorRT 10.13.0.35, this machine has 10.14.1.48",)


def test_another_compute_capability_is_refused_naming_both_gpus() -> None:
    ada = MachineFacts("10.13.0.35", "NVIDIA L4", "8.9", "12.9", "12.9")
    verdict = compatibility(H100, ada)
    assert not verdict.ok
    assert verdict.errors == ("built for compute capability 9.0 (NVIDIA H100 80GB HBM3), this GPU is 8.9 (NVIDIA L4)",)


def test_both_mismatches_are_reported_together() -> None:
    elsewhere = MachineFacts("11.0.0.1", "NVIDIA L4", "8.9", "13.0", "13.0")
    assert len(compatibility(H100, elsewhere).errors) == 2


def test_another_gpu_of_the_same_architecture_is_a_warning() -> None:
    h200 = dataclasses.replace(H100, gpu_name="NVIDIA H200")
    verdict = compatibility(H100, h200)
    assert verdict.ok
    assert verdict.warnings == (
        "built on NVIDIA H100 80GB HBM3, running on NVIDIA H200: it runs, but may not be the fastest",
    )


def test_an_older_driver_is_a_warning_and_a_newer_one_is_silent() -> None:
    older = compatibility(H100, dataclasses.replace(H100, cuda_driver="12.4"))
    assert older.ok and older.warnings == ("built with a driver for CUDA 12.9, this driver supports CUDA 12.4",)
    assert compatibility(H100, dataclasses.replace(H100, cuda_driver="12.10")).warnings == ()
    assert compatibility(H100, dataclasses.replace(H100, cuda_driver="13.0")).warnings == ()


def test_rebuild_hint_names_the_command() -> None:
    assert "gantool export --trt" in REBUILD_HINT


def test_profile_from_dict_round_trip() -> None:
    profile = Profile("images", "translated", (1, 3, 8, 8), (4, 3, 16, 16), (8, 3, 32, 32))
    assert Profile.from_dict(profile.to_dict()) == profile
