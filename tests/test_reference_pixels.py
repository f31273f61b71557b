"""`gantool import cyclegan` then `gantool translate`, default options: the pixels pytorch-CycleGAN-and-pix2pix writes.

The reference's ``test.py`` pipeline is written out in reference_cyclegan.py from
its documented defaults. Every photo below, whatever its size, mode or format,
must come out of gantool within one 8-bit level of the reference's output (the
reference truncates to 8 bits, gantool rounds). The deliberate differences
(EXIF orientation, ``--keep-size``) have their own tests, with the flag that
gives the reference's behaviour back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from reference_cyclegan import reference_generator, reference_translation
from sklearn.datasets import load_sample_image

from conftest import run_cli

SIZES = {"small": (13, 9), "odd": (257, 191), "large": (1100, 900)}  # (width, height); large is 4× the model's side

# (format, Pillow mode of the saved file); every mode a photo commonly comes in, each format the reference reads.
FILES = [
    ("png", "RGB"), ("png", "L"), ("png", "LA"), ("png", "RGBA"), ("png", "P"), ("png", "P+transparency"),
    ("png", "I;16"), ("png", "1"),
    ("jpg", "RGB"), ("jpg", "L"), ("jpg", "CMYK"),
    ("webp", "RGB"), ("webp", "RGBA"),
    ("bmp", "RGB"), ("bmp", "L"), ("bmp", "P"),
    ("tif", "RGB"), ("tif", "RGBA"), ("tif", "I;16"), ("tif", "CMYK"),
    ("ppm", "RGB"),
]  # fmt: skip


def photo(width: int, height: int) -> Image.Image:
    """A real photograph (scikit-learn's bundled 'china.jpg'), resized to width×height: smooth areas and edges."""
    return Image.fromarray(load_sample_image("china.jpg")).resize((width, height), Image.Resampling.LANCZOS)


def save_as(image: Image.Image, path: Path, mode: str) -> Path:
    """Save an RGB photo as a file of the given mode (16-bit: values around 255, so Pillow's clipping shows)."""
    if mode == "I;16":
        wide = np.asarray(image.convert("L"), np.uint16) + 64  # part above 255: what convert('RGB') clips
        Image.fromarray(wide).save(path)
    elif mode == "P+transparency":
        image.convert("P", palette=Image.Palette.ADAPTIVE).save(path, transparency=0)
    elif mode == "P":
        image.convert("P", palette=Image.Palette.ADAPTIVE).save(path)
    elif mode in ("LA", "RGBA"):
        with_alpha = image.convert(mode)
        with_alpha.putalpha(Image.linear_gradient("L").resize(image.size))
        with_alpha.save(path)
    else:
        image.convert(mode).save(path, **({"quality": 90} if path.suffix == ".jpg" else {}))
    with Image.open(path) as saved:
        assert saved.mode == mode.split("+")[0], (path, saved.mode)  # the file really is in that mode
    return path


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    """A generator in the reference's layout, saved as its latest_net_G_A.pth, imported with default options."""
    folder = tmp_path_factory.mktemp("reference")
    net = reference_generator(ngf=8, n_blocks=2)
    torch.save(net.state_dict(), folder / "latest_net_G_A.pth")
    assert run_cli("import", "cyclegan", folder / "latest_net_G_A.pth", "--out", folder / "run").exit_code == 0
    return net, folder / "run"


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Every format and mode at an odd size, and PNG, JPEG and WebP (RGB) at the other sizes too: 27 photos."""
    folder = tmp_path_factory.mktemp("photos")
    cases = [("odd", suffix, mode) for suffix, mode in FILES]
    cases += [(label, suffix, "RGB") for label in SIZES if label != "odd" for suffix in ("png", "jpg", "webp")]
    images = {label: photo(*size) for label, size in SIZES.items()}
    files = []
    for label, suffix, mode in cases:
        name = f"{label}-{mode.replace(';', '').replace('+', '-')}-{suffix}.{suffix}"
        files.append(save_as(images[label], folder / name, mode))
    return files


@pytest.fixture(scope="module")
def references(imported: tuple[torch.nn.Module, Path], photos: list[Path]) -> dict[str, np.ndarray]:
    """What the reference's test.py writes for each photo, by file name."""
    net, _ = imported
    return {source.name: reference_translation(net, source) for source in photos}


def translated(out: Path, source: Path) -> np.ndarray:
    with Image.open(out / f"{source.stem}.png") as image:
        return np.asarray(image.convert("RGB"))


def assert_within_one_level(ours: np.ndarray, theirs: np.ndarray, name: str) -> None:
    assert ours.shape == theirs.shape, name
    assert theirs.std() > 10, name  # a real translation, not a flat image that any pipeline would match
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1, name


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_default_translation_is_the_references_for_every_size_mode_and_format(
    imported: tuple[torch.nn.Module, Path], photos: list[Path], references: dict[str, np.ndarray], tmp_path: Path,
    backend: str,
) -> None:  # fmt: skip
    _, run = imported
    if backend == "onnxruntime" and not (run / "generator_a2b.onnx").exists():
        assert run_cli("export", run).exit_code == 0
    result = run_cli("translate", run, photos[0].parent, "--out", tmp_path / "out", "--backend", backend)
    assert result.exit_code == 0, result.stderr
    for source in photos:
        assert_within_one_level(translated(tmp_path / "out", source), references[source.name], source.name)


def test_round_size_is_the_references_preprocess_none(imported: tuple[torch.nn.Module, Path], tmp_path: Path) -> None:
    net, run = imported
    odd = save_as(photo(257, 191), tmp_path / "odd.png", "RGB")  # → 256×192, as --preprocess none resizes it
    result = run_cli("translate", run, odd, "--round-size", "--out", tmp_path / "out", "--backend", "torch")
    assert result.exit_code == 0, result.stderr
    ours = translated(tmp_path / "out", odd)
    assert ours.shape == (192, 256, 3)
    assert_within_one_level(ours, reference_translation(net, odd, load_size=None), odd.name)


def test_exif_orientation_is_applied_unless_no_exif_asks_for_the_references_pixels(
    imported: tuple[torch.nn.Module, Path], tmp_path: Path
) -> None:
    net, run = imported
    sideways = photo(320, 200)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to view
    sideways.save(tmp_path / "phone.jpg", exif=exif, quality=90)
    upright = Image.open(tmp_path / "phone.jpg").transpose(Image.Transpose.ROTATE_270)
    upright.save(tmp_path / "upright.png")  # the same decoded pixels, turned as a viewer shows them

    for flags, expected in (([], "upright.png"), (["--no-exif"], "phone.jpg")):
        out = tmp_path / f"out{len(flags)}"
        result = run_cli("translate", run, tmp_path / "phone.jpg", "--out", out, "--backend", "torch", *flags)
        assert result.exit_code == 0, result.stderr
        reference = reference_translation(net, tmp_path / expected)
        assert_within_one_level(translated(out, tmp_path / "phone.jpg"), reference, " ".join(flags))


def test_reduced_jpeg_decoding_is_an_explicit_option_that_changes_pixels(
    imported: tuple[torch.nn.Module, Path], tmp_path: Path
) -> None:
    net, run = imported
    large = save_as(photo(1100, 900), tmp_path / "large.jpg", "RGB")
    outputs = {}
    for flags in ([], ["--reduced-jpeg"]):
        out = tmp_path / f"out{len(flags)}"
        result = run_cli("translate", run, large, "--out", out, "--backend", "torch", *flags)
        assert result.exit_code == 0, result.stderr
        outputs[bool(flags)] = translated(out, large).astype(int)
    reference = reference_translation(net, large).astype(int)
    assert np.abs(outputs[False] - reference).max() <= 1  # the default decodes in full
    assert np.abs(outputs[True] - reference).max() > 1  # the shortcut is not the same pixels...
    assert np.abs(outputs[True] - reference).mean() < 4  # ...but close ones
    refused = run_cli("translate", run, large, "--out", tmp_path / "no", "--keep-size", "--reduced-jpeg")
    assert refused.exit_code == 2 and "--reduced-jpeg" in refused.stderr
