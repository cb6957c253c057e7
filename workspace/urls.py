from django.urls import path

from workspace.views import admin, compare, conversations, knowledge, memory, stream

app_name = "workspace"

urlpatterns = [
    path("", conversations.conversation_list, name="conversation-list"),
    path("open/", conversations.workspace_open, name="open"),
    path("c/<int:pk>/", conversations.conversation_detail, name="conversation-detail"),
    path("c/<int:pk>/rename/", conversations.conversation_rename, name="conversation-rename"),
    path("c/<int:pk>/pin/", conversations.conversation_pin, name="conversation-pin"),
    path("c/<int:pk>/lock/", conversations.conversation_lock, name="conversation-lock"),
    path("c/<int:pk>/delete/", conversations.conversation_delete, name="conversation-delete"),
    path("c/<int:pk>/send/", conversations.conversation_send, name="conversation-send"),
    path("c/<int:pk>/export.<str:fmt>", conversations.conversation_export, name="conversation-export"),
    path("c/<int:pk>/turn/", stream.conversation_turn, name="conversation-turn"),
    path("compare/", compare.compare_page, name="compare"),
    path("memory/", memory.memory_list, name="memory"),
    path("memory/<int:pk>/", memory.memory_edit, name="memory-edit"),
    path("memory/<int:pk>/delete/", memory.memory_delete, name="memory-delete"),
    path("knowledge/", knowledge.knowledge_list, name="knowledge-list"),
    path("knowledge/<int:pk>/", knowledge.knowledge_detail, name="knowledge-detail"),
    path("knowledge/<int:pk>/delete/", knowledge.knowledge_delete, name="knowledge-delete"),
    path("documents/<int:pk>/delete/", knowledge.document_delete, name="document-delete"),
    path("passages/<int:pk>/", knowledge.chunk_detail, name="passage"),
    path("personas/", admin.persona_list, name="persona-list"),
    path("personas/<int:pk>/", admin.persona_edit, name="persona-edit"),
    path("personas/<int:pk>/delete/", admin.persona_delete, name="persona-delete"),
    path("settings/", admin.settings_edit, name="settings"),
]
