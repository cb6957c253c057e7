from tests.runtime_bridge import legacy_runtime_key_cache  # noqa: F401
