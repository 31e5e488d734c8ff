"""Unit tests of the Python client (``agentsdk_client``), private modules included.

A package, so that its ``conftest`` and helper modules are imported as
``tests.conftest`` / ``tests._helpers`` and never shadow the top-level
``conftest`` of the server and end-to-end tests in the repository's ``tests/``.
"""
