"""TensorRT engines from deploykit artifacts: CPU checks before the build, the build, the sidecar, the runner.

Nothing here imports ``tensorrt`` at module level: the CPU checks (``preflight``, ``compat``,
``shape_profile``, ``precision``, ``sidecar``, ``calibration_cache``) run anywhere; ``builder`` and
``deploykit.trt.runner`` import TensorRT only when they run, after ``probe`` confirmed (in a
subprocess) that TensorRT and a GPU are usable.
"""
