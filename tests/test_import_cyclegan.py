"""`gantool import cyclegan`: generators saved by pytorch-CycleGAN-and-pix2pix become gantool checkpoints.

The files are made the way that repository makes them (torch.save of the
generator's state dict) from an independent reference network with its exact
layer layout; the imported checkpoint must reproduce the reference's outputs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from reference_cyclegan import instance_norms, reference_generator

import gantool
from gantool.checkpoint import read_spec
from gantool.training.import_cyclegan import guess_direction

TOLERANCE = 1e-5


def save_reference(path: Path, net: torch.nn.Module, **save_kwargs: object) -> Path:
    """Save a generator as the original repository does: its plain state dict, pickled by torch.save."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path, **save_kwargs)
    return path


def assert_same_outputs(reference: torch.nn.Module, imported: torch.nn.Module, *shapes: tuple[int, ...]) -> None:
    """Same images in, same translations out (≤ 1e-5), on every shape given, rectangular ones included."""
    generator = torch.Generator().manual_seed(1)
    for shape in shapes:
        images = torch.rand(*shape, generator=generator) * 2 - 1
        with torch.no_grad():
            expected, actual = reference(images), imported(images)
        assert actual.shape == expected.shape == shape
        assert expected.std() > 0.05  # a real picture, not a flat one any network would match
        assert (actual - expected).abs().max().item() <= TOLERANCE


def one_line_error(result, code: int = 1) -> str:
    """The command failed with ``code`` and said why in exactly one line on stderr."""
    assert result.exit_code == code, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_imported_generator_translates_like_the_original(cli, tmp_path: Path) -> None:
    reference = reference_generator(ngf=8, n_blocks=2)
    source = save_reference(tmp_path / "checkpoints" / "latest_net_G_A.pth", reference)

    result = cli("import", "cyclegan", source, "--out", tmp_path / "run")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert "a2b (A→B), 2 blocks, ngf 8" in lines[0] and "generator_a2b.safetensors" in lines[0]
    spec = read_spec(tmp_path / "run" / "generator_a2b.safetensors")
    assert (spec.kind, spec.arch, spec.arch_params) == ("cyclegan", "resnet", {"ngf": 8, "blocks": 2})
    assert (spec.channels, spec.height, spec.width, spec.direction, spec.domains) == (3, 256, 256, "a2b", ("A", "B"))
    assert spec.provenance["imported_from"] == "latest_net_G_A.pth"  # a name, not the user's path
    assert spec.provenance["source"] == "pytorch-CycleGAN-and-pix2pix"
    assert spec.provenance["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    imported = gantool.torch_module(tmp_path / "run")
    assert_same_outputs(reference, imported, (2, 3, 32, 32), (1, 3, 20, 36), (1, 3, 64, 48))


@pytest.mark.parametrize(
    ("name", "direction"),
    [
        ("latest_net_G_A.pth", "a2b"),
        ("200_net_G_B.pth", "b2a"),
        ("latest_net_G.pth", "a2b"),
        ("horse2zebra.pth", "a2b"),
    ],
)
def test_direction_is_guessed_from_the_file_name(name: str, direction: str) -> None:
    assert guess_direction(name) == direction


def test_g_b_with_domain_names_and_size_fills_the_b2a_slot(cli, tmp_path: Path) -> None:
    source = save_reference(tmp_path / "latest_net_G_B.pth", reference_generator(ngf=4, n_blocks=1, seed=3))

    result = cli("import", "cyclegan", source, "--out", tmp_path / "run", "--domains", "horse,zebra", "--size", "128")

    assert result.exit_code == 0, result.stderr
    assert "b2a (zebra→horse)" in result.stdout
    spec = read_spec(tmp_path / "run" / "generator_b2a.safetensors")
    assert (spec.direction, spec.domains, spec.height, spec.width) == ("b2a", ("horse", "zebra"), 128, 128)


def test_dataparallel_prefix_and_old_instancenorm_statistics_are_accepted(cli, tmp_path: Path) -> None:
    """A PyTorch < 0.4 era file: legacy serialisation, `module.` keys, running stats on every InstanceNorm."""
    reference = reference_generator(ngf=8, n_blocks=2, seed=5)
    state = {f"module.{key}": value for key, value in reference.state_dict().items()}
    norms = instance_norms(reference)
    for name, width in norms.items():
        state[f"module.{name}.running_mean"] = torch.randn(width)  # nonsense values: they must not be used
        state[f"module.{name}.running_var"] = torch.rand(width) + 5
        state[f"module.{name}.num_batches_tracked"] = torch.tensor(7)
    source = tmp_path / "latest_net_G_A.pth"
    torch.save(state, source, _use_new_zipfile_serialization=False)

    result = cli("import", "cyclegan", source, "--out", tmp_path / "run")

    assert result.exit_code == 0, result.stderr
    assert f"dropped {3 * len(norms)} InstanceNorm running-stat keys" in result.stdout
    assert_same_outputs(reference, gantool.torch_module(tmp_path / "run"), (1, 3, 32, 32), (2, 3, 16, 24))


def test_blocks_trained_with_dropout_and_a_wrapped_state_dict_are_accepted(cli, tmp_path: Path) -> None:
    reference = reference_generator(ngf=8, n_blocks=2, seed=7, use_dropout=True)
    source = tmp_path / "latest_net_G_A.pth"
    torch.save({"state_dict": reference.state_dict(), "epoch": 200}, source)

    result = cli("import", "cyclegan", source, "--out", tmp_path / "run", "--json")

    assert result.exit_code == 0, result.stderr
    assert '"dropout": true' in result.stdout
    assert_same_outputs(reference, gantool.torch_module(tmp_path / "run"), (1, 3, 32, 32))


def test_full_size_generator_has_the_published_parameter_count(cli, tmp_path: Path) -> None:
    reference = reference_generator(ngf=64, n_blocks=9)
    source = save_reference(tmp_path / "latest_net_G.pth", reference)

    result = cli("import", "cyclegan", source, "--out", tmp_path / "run", "--blocks", "9", "--ngf", "64")

    assert result.exit_code == 0, result.stderr
    assert "9 blocks, ngf 64, 11,378,179 params" in result.stdout
    assert_same_outputs(reference, gantool.torch_module(tmp_path / "run"), (1, 3, 32, 32))


def _drop_bias(state: dict) -> None:
    del state["model.4.bias"]


def _add_key(state: dict) -> None:
    state["model.9.weight"] = torch.zeros(3)


def _reshape(state: dict) -> None:
    state["model.10.conv_block.5.weight"] = torch.zeros(32, 32, 1, 1)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (_drop_bias, "missing 1: model.4.bias"),
        (_add_key, "unexpected 1: model.9.weight"),
        (_reshape, "model.10.conv_block.5.weight 32×32×1×1 (expected 32×32×3×3)"),
    ],
)
def test_keys_that_do_not_fit_are_listed_and_nothing_is_written(cli, tmp_path: Path, edit, named: str) -> None:
    state = reference_generator(ngf=8, n_blocks=2).state_dict()
    edit(state)
    torch.save(state, tmp_path / "latest_net_G_A.pth")

    result = cli("import", "cyclegan", tmp_path / "latest_net_G_A.pth", "--out", tmp_path / "run")

    assert named in one_line_error(result)
    assert not (tmp_path / "run" / "generator_a2b.safetensors").exists()


class Payload:
    """Not a tensor: unpickling it needs this class, i.e. code, which weights_only refuses."""

    def __init__(self) -> None:
        self.weight = torch.zeros(2)


def test_a_pickle_with_code_is_refused_without_running_it(cli, tmp_path: Path) -> None:
    torch.save({"model.1.weight": Payload()}, tmp_path / "latest_net_G_A.pth")

    message = one_line_error(cli("import", "cyclegan", tmp_path / "latest_net_G_A.pth", "--out", tmp_path / "run"))

    assert "Payload" in message and "weights_only=True" in message


def test_files_that_are_not_cyclegan_generators_are_refused(cli, tiny_checkpoint: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"definitely not a torch file")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    other = tmp_path / "classifier.pth"
    torch.save(torch.nn.Linear(4, 2).state_dict(), other)
    rgb_to_grey = save_reference(tmp_path / "grey.pth", reference_generator(output_nc=1))
    run = tmp_path / "imported"

    assert "already a gantool checkpoint" in one_line_error(cli("import", "cyclegan", tiny_checkpoint, "--out", run))
    assert "not a PyTorch state-dict file" in one_line_error(cli("import", "cyclegan", garbage, "--out", run))
    assert "is empty" in one_line_error(cli("import", "cyclegan", empty, "--out", run))
    assert "no 4-D model.1.weight" in one_line_error(cli("import", "cyclegan", other, "--out", run))
    assert "to 1-channel ones" in one_line_error(cli("import", "cyclegan", rgb_to_grey, "--out", run))
    assert "does not exist" in one_line_error(cli("import", "cyclegan", tmp_path / "nope.pth", "--out", run))
    assert not run.exists()


def test_existing_output_needs_force_and_flags_must_agree_with_the_file(cli, tmp_path: Path) -> None:
    source = save_reference(tmp_path / "latest_net_G_A.pth", reference_generator(ngf=8, n_blocks=2))
    run = tmp_path / "run"
    assert cli("import", "cyclegan", source, "--out", run).exit_code == 0
    written = (run / "generator_a2b.safetensors").stat().st_mtime_ns

    assert "already exists" in one_line_error(cli("import", "cyclegan", source, "--out", run), code=2)
    assert (run / "generator_a2b.safetensors").stat().st_mtime_ns == written
    message = one_line_error(cli("import", "cyclegan", source, "--out", run, "--force", "--blocks", "9"), code=2)
    assert "--blocks 9 contradicts latest_net_G_A.pth, which has 2 residual blocks" in message
    assert "--ngf 64 contradicts" in one_line_error(
        cli("import", "cyclegan", source, "-o", run, "--force", "--ngf", "64"), 2
    )
    assert cli("import", "cyclegan", source, "--out", run, "--force", "--direction", "b2a").exit_code == 0
    assert read_spec(run / "generator_b2a.safetensors").direction == "b2a"
