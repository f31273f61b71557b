"""``gantool serve``: generators on NVIDIA Triton Inference Server, through PyTriton (the ``serve`` extra).

Triton does the serving: HTTP and gRPC (the KServe v2 protocol), dynamic
batching, health, readiness and statistics. gantool only binds its own
runtime to it: each model is opened with ``gantool.load`` (the auto backend
unless told otherwise) and answers through the functions in ``endpoints``,
which check every request against ``limits`` before it reaches the network.

- ``endpoints``: what each model takes and returns (pure numpy, no PyTriton).
- ``limits``: batch, image side and request-byte limits, and their checks.
- ``server``: starting Triton on PyTriton, binding the endpoints, draining on SIGTERM.
- ``cli``: the ``gantool serve`` command.
"""
