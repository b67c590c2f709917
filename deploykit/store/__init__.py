"""The artifact store: every file deploykit writes, and how.

- ``files``: reading, hashing, JSON, safe names (the leaf);
- ``staging`` and ``transaction``: a step's files staged, then published together; recovery after a crash;
- ``ownership``: which files deploykit wrote in a folder, in one format, and the one rule for replacing one;
- ``layout``: the file names of an artifact, per precision;
- ``manifest``: the manifest's schema;
- ``writer``: the one writer every step uses (``artifact_step``, ``new_artifact``, ``record_step``).
"""
