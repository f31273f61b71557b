"""``gantool train``: turn images into a run folder (checkpoint, sample grids, metrics, resumable state).

cli.py (Typer commands) → gan.py (the GAN trainer) on top of pieces any model
reuses: config.py (torch-free options), datasets.py, loop.py (device, shuffles,
progress, the epoch loop), run_dir.py (folder checks, metrics, grids) and
state.py (the ``--resume`` file, loaded with ``weights_only=True``).
"""
