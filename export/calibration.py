"""The inputs ``export --int8`` calibrates on: what the generator will really see, seeded, so a rerun is identical.

Static quantization fixes one scale per activation tensor from the value
ranges seen on a calibration set, so that set must look like production
inputs. Random images would calibrate a translator to ranges real images
never reach (or miss the ones they do), which is why the issue asks for
training images:

- **a GAN**: ``--calib N`` latents from ``generate``'s own stream
  (``latent_batch``, seed 0 unless ``--seed``): exactly what sampling feeds it.
  ``--calib-data FILE.npy|.npz`` gives latents instead (float32 N×Z), e.g. a
  truncated distribution a deployment uses.
- **a translator**: N images of its *source* domain's training split, read as
  training read them: digits-m's trainA/trainB, or the run's image folder
  (``run.json``) ``trainA/`` or ``trainB/``. ``--calib-data DIR`` gives another
  folder: one holding ``trainA/`` and ``trainB/`` (each direction takes its own),
  or a flat folder of images used for every translator exported. Images are
  resized to the model's size, as training resized them.

N images are a seeded random subset (all of them when there are fewer).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from gantool.artifacts import RUN_OPTIONS_FILE
from gantool.data import UNPAIRED_FOLDERS, load_digits_m, load_image_folder, pixels_to_unit
from gantool.errors import UsageError
from gantool.latents import latent_batch
from gantool.spec import ModelSpec

DEFAULT_CALIB = 128  # inputs: enough for stable per-tensor min/max on these models, seconds to run
MIN_CALIB = 8
DIGITS_M = "digits-m"


def calibration_inputs(
    spec: ModelSpec, checkpoint: Path, count: int, data: Path | None, seed: int = 0
) -> tuple[np.ndarray, str]:
    """float32 calibration inputs for the model (latents N×Z, or images N×C×H×W in [-1, 1]) and where they came from."""
    if count < MIN_CALIB:
        raise UsageError(f"--calib must be at least {MIN_CALIB}, got {count}")
    if spec.latent_dim is not None:
        if data is not None:
            return _latents_file(data, spec, count, seed), f"{data} (latents)"
        return latent_batch(seed, 0, count, spec.latent_dim), f"{count} latents (seed {seed})"
    pixels, source = _translator_pixels(spec, checkpoint, data)
    pick = np.sort(np.random.default_rng(seed).permutation(len(pixels))[:count])
    return pixels_to_unit(pixels[pick]), f"{len(pick)} images of {source}"


def check_calibration_data(data: Path | None, specs: list[ModelSpec]) -> None:
    """Refuse a ``--calib-data`` that cannot serve these models, before anything is exported."""
    if data is None:
        return
    if not data.exists():
        raise UsageError(f"--calib-data {data} does not exist")
    gans = [spec for spec in specs if spec.latent_dim is not None]
    if gans and (data.is_dir() or data.suffix not in (".npy", ".npz")):
        raise UsageError(f"--calib-data {data}: a GAN calibrates on latents: pass a .npy or .npz file of N×Z floats")
    if len(gans) < len(specs) and not data.is_dir():
        raise UsageError(f"--calib-data {data}: a translator calibrates on images: pass a folder")


def _latents_file(path: Path, spec: ModelSpec, count: int, seed: int) -> np.ndarray:
    try:
        loaded = np.load(path, allow_pickle=False)
        if hasattr(loaded, "files"):
            with loaded as arrays:
                names = list(arrays.files)
                if len(names) != 1 and "latents" not in names:
                    raise UsageError(f"--calib-data {path}: expected one array (or one named 'latents'), got {names}")
                latents = arrays["latents" if "latents" in names else names[0]]
        else:
            latents = loaded
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UsageError(f"--calib-data {path}: not a readable .npy/.npz ({exc})") from None
    if latents.ndim != 2 or latents.shape[1] != spec.latent_dim or not np.issubdtype(latents.dtype, np.floating):
        raise UsageError(f"--calib-data {path}: expected float latents N×{spec.latent_dim}, got {latents.shape}")
    if not np.isfinite(latents).all():
        raise UsageError(f"--calib-data {path}: holds NaN or infinite values")
    pick = np.sort(np.random.default_rng(seed).permutation(len(latents))[:count])
    return np.ascontiguousarray(latents[pick], dtype=np.float32)


def _translator_pixels(spec: ModelSpec, checkpoint: Path, data: Path | None) -> tuple[np.ndarray, str]:
    """uint8 N×H×W×C training images of the translator's source domain, and their name."""
    letter = "B" if spec.direction == "b2a" else "A"  # a2b reads A; a translator file without a direction: A
    if data is not None:
        folder = data / f"train{letter}" if all((data / name).is_dir() for name in UNPAIRED_FOLDERS) else data
        return _folder(folder, spec), str(folder)
    if spec.provenance.get("dataset") == DIGITS_M:
        domain_a, domain_b = load_digits_m(spec.height, "train")
        return (domain_b if letter == "B" else domain_a), f"digits-m train{letter}"
    recorded = _recorded_dataset(checkpoint.parent)
    if recorded is not None and (recorded / f"train{letter}").is_dir():
        return _folder(recorded / f"train{letter}", spec), str(recorded / f"train{letter}")
    raise UsageError(
        f"{checkpoint}: cannot find its training images to calibrate on: pass --calib-data DIR "
        "(a folder of images, or one holding trainA/ and trainB/)"
    )


def _folder(folder: Path, spec: ModelSpec) -> np.ndarray:
    pixels, _ = load_image_folder(folder, spec.height, spec.channels)
    if len(pixels) == 0:
        raise UsageError(f"--calib-data {folder}: holds no images")
    return pixels


def _recorded_dataset(run_dir: Path) -> Path | None:
    """The image folder ``run.json`` says the run trained on, when it names one."""
    try:
        options = json.loads((run_dir / RUN_OPTIONS_FILE).read_text())
    except (OSError, ValueError):
        return None
    dataset = options.get("dataset") if isinstance(options, dict) else None
    return Path(dataset) if isinstance(dataset, str) and dataset and Path(dataset).is_dir() else None
