from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "workspace"
    verbose_name = "Workspace"

    def ready(self) -> None:
        from workspace.conf import workspace_conf
        from workspace.retrieval import RetrievalCache

        # Process-wide: each knowledge base's search index, rebuilt when its version moves.
        self.retrieval_cache = RetrievalCache(capacity=workspace_conf().retrieval_cache_bases)
