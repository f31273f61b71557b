"""``gantool train`` and ``gantool import``: turn images (or another tool's weights) into a run folder.

cli.py (Typer commands) → gan.py (the GAN trainer) and cyclegan.py (the
CycleGAN trainer, with image_pool.py and unpaired.py) on top of pieces any
model reuses: config.py (torch-free options), datasets.py, loop.py (device,
shuffles, the step loop with its save points and divergence checks),
signals.py (Ctrl-C/SIGTERM as a stop request), checkpoints.py (atomic save
points, ``--save-every`` rotation, finding the state to resume), progress.py,
run_dir.py (folder checks, metrics, grids) and state.py (the ``--resume`` file,
loaded with ``weights_only=True``). import_cli.py / import_cyclegan.py convert
pytorch-CycleGAN-and-pix2pix generators into verified gantool checkpoints.
"""
