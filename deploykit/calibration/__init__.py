"""The shared calibration harness: one data contract, one set of ranges, every INT8/FP16 consumer.

- ``data``: the calibration data contract (images, .npy/.npz arrays, seeded synthetic data) and
  its onnxruntime ``CalibrationDataReader`` adapter;
- ``ranges``: per-tensor ranges by minmax / entropy / percentile (onnxruntime's calibrators);
- ``qdq``: the explicit-quantization INT8 ONNX (onnxruntime ``quantize_static``, QDQ, symmetric);
- ``fp16``: the FP16 ONNX with overflow-prone operators kept in FP32, chosen from the ranges;
- ``provenance``: calibration.json and the refusal to reuse mismatched ranges or caches;
- ``pipeline``: ``calibrate_artifact`` tying them to an artifact folder (``deploykit calibrate``), which
  also writes TensorRT's calibration cache (``deploykit.trt.calibration_cache``).

Nothing here is imported by ``import deploykit``; import the submodule you need.
"""
