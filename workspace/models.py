"""Workspace: conversations of people with models, through the same pipeline as `/v1`."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from console.models import ApiKey, DataClass, Organization, Team


def new_version() -> str:
    return uuid.uuid4().hex


class WorkspaceSettings(models.Model):
    """One organization's workspace switches; absent means the defaults (on, every model)."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="workspace_settings")
    enabled = models.BooleanField(default=True)
    allowed_models = models.JSONField(default=list, blank=True, help_text="Empty means every model of the key.")
    retention_days = models.PositiveIntegerField(default=0, help_text="0 keeps conversations forever.")
    uploads_allowed = models.BooleanField(default=True, help_text="Members may upload documents.")
    private_personas = models.BooleanField(default=False, help_text="Members may create personas only they see.")
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"workspace settings of {self.organization_id}"


class WorkspaceKey(models.Model):
    """The virtual key a member's workspace traffic uses (the secret is never stored)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="workspace_keys")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workspace_keys")
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="workspace_key_one_per_member")]

    def __str__(self) -> str:
        return f"workspace key of {self.user_id} in {self.organization_id}"


class Persona(models.Model):
    """A starting point for conversations: an administrator's, shared with the organization
    (no teams) or with some teams; or a member's private one (`owner`), when allowed."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="personas")
    name = models.CharField(max_length=120)
    description = models.CharField(max_length=300, blank=True)
    system_prompt = models.TextField(blank=True)
    default_model = models.CharField(max_length=200, blank=True)
    allowed_models = models.JSONField(default=list, blank=True, help_text="Empty means every model of the key.")
    temperature = models.DecimalField(max_digits=3, decimal_places=2, null=True, blank=True)
    knowledge_base = models.ForeignKey(
        "KnowledgeBase", null=True, blank=True, on_delete=models.SET_NULL, related_name="personas"
    )
    data_class = models.CharField(max_length=32, choices=DataClass.choices, blank=True)
    teams = models.ManyToManyField(Team, blank=True, related_name="workspace_personas")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="workspace_personas"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="workspace_persona_name")]

    def __str__(self) -> str:
        return self.name


class KnowledgeBase(models.Model):
    """Documents shared with the organization, cut into chunks with their embeddings."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="knowledge_bases")
    name = models.CharField(max_length=120)
    description = models.CharField(max_length=300, blank=True)
    embedding_model = models.CharField(max_length=200, default="text-embedding-3-small")
    # Changes whenever its set of ready chunks changes; retrieval caches compare it.
    index_version = models.CharField(max_length=32, default=new_version)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="workspace_kb_name")]

    def __str__(self) -> str:
        return self.name


class DocumentStatus(models.TextChoices):
    PENDING = "pending", "Being indexed"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Document(models.Model):
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="documents")
    name = models.CharField(max_length=255)
    size = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=DocumentStatus.choices, default=DocumentStatus.PENDING)
    error = models.CharField(max_length=500, blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)  # embedded so far (progress)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    vector = models.BinaryField(blank=True, default=b"")  # float32, little-endian

    class Meta:
        ordering = ["document_id", "ordinal"]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.ordinal}"


class Conversation(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="conversations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, default="New conversation")
    model = models.CharField(max_length=200)
    persona = models.ForeignKey(Persona, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    knowledge_base = models.ForeignKey(
        KnowledgeBase, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    data_class = models.CharField(max_length=32, choices=DataClass.choices, default=DataClass.INTERNAL)
    pinned = models.BooleanField(default=False)
    model_locked = models.BooleanField(default=False, help_text="Set by an administrator: the model cannot change.")
    total_cost = models.DecimalField(max_digits=20, decimal_places=10, default=Decimal(0))
    total_tokens = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-pinned", "-updated_at"]
        indexes = [models.Index(fields=["organization", "user", "-updated_at"])]

    def __str__(self) -> str:
        return self.title


class MessageKind(models.TextChoices):
    USER = "user", "User"
    ANSWER = "answer", "Answer"
    SWITCH = "switch", "Model switch"
    REFUSAL = "refusal", "Refused"


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=16, choices=MessageKind.choices)
    content = models.TextField(blank=True)
    model = models.CharField(max_length=200, blank=True)
    deployment = models.CharField(max_length=200, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=20, decimal_places=10, default=Decimal(0))
    error_code = models.CharField(max_length=64, blank=True)
    stopped = models.BooleanField(default=False)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)  # time to the first token
    citations = models.JSONField(default=list, blank=True)  # [{"n", "document", "ordinal", "excerpt"}]
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.content[:40]}"

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class MemoryFact(models.Model):
    """Something a member asked to be remembered; sent as a system message with their turns."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workspace_memory")
    text = models.CharField(max_length=1000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.text[:60]
