from tests.runtime_bridge import legacy_runtime_key_cache, pooled_connections_closed  # noqa: F401
