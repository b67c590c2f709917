"""The TensorRT / cuda-python name check (a repository tool, not shipped in deploykit's wheel).

    api_check.py    reads deploykit's source with ast and checks every TensorRT and cuda-python name it uses
                    against the pinned references in data/
    api_sources.py  how those references are made (``PYTHONPATH=tools python -m trt_api_check.api_sources --help``)
    data/           tensorrt_{10,11}_api.json, cuda_bindings_{12,13}_api.json

tests/test_trt_api.py runs the check on CPU.
"""
