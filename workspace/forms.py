from __future__ import annotations

from django import forms

from console.models import DataClass


def _model_list(value: str) -> list[str]:
    return sorted({m.strip() for m in value.replace("\n", ",").split(",") if m.strip()})


class ConversationForm(forms.Form):
    persona = forms.ModelChoiceField(queryset=None, required=False, empty_label="No persona")
    knowledge_base = forms.ModelChoiceField(queryset=None, required=False, empty_label="No knowledge base")
    model = forms.CharField(max_length=200, required=False)
    data_class = forms.ChoiceField(choices=DataClass.choices, initial=DataClass.INTERNAL)

    def __init__(self, *args, personas=None, knowledge_bases=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["persona"].queryset = personas
        self.fields["knowledge_base"].queryset = knowledge_bases


class RenameForm(forms.Form):
    title = forms.CharField(max_length=200)


class MemoryForm(forms.Form):
    text = forms.CharField(max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))


class PersonaForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(max_length=300, required=False)
    system_prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), required=False)
    default_model = forms.CharField(max_length=200, required=False)
    allowed_models = forms.CharField(
        required=False, help_text="Comma-separated; empty offers every model the member's key may use."
    )
    temperature = forms.DecimalField(min_value=0, max_value=2, max_digits=3, decimal_places=2, required=False)
    knowledge_base = forms.ModelChoiceField(queryset=None, required=False, empty_label="No knowledge base")
    data_class = forms.ChoiceField(
        choices=[("", "The member chooses")] + list(DataClass.choices), required=False, label="Data class"
    )
    teams = forms.ModelMultipleChoiceField(
        queryset=None, required=False, help_text="None: shared with the whole organization."
    )
    private = forms.BooleanField(required=False, label="Private (only you see it)")

    def __init__(self, *args, organization=None, manager: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from workspace.models import KnowledgeBase

        self.fields["knowledge_base"].queryset = KnowledgeBase.objects.filter(organization=organization)
        self.fields["teams"].queryset = organization.teams.all() if organization is not None else None
        if not manager:  # a member's persona is always private
            del self.fields["teams"]
            del self.fields["private"]

    def clean_allowed_models(self) -> list[str]:
        return _model_list(self.cleaned_data["allowed_models"])


class SettingsForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Workspace on")
    allowed_models = forms.CharField(
        required=False, help_text="Comma-separated; empty offers every model the member's key may use."
    )
    retention_days = forms.IntegerField(
        min_value=0,
        max_value=36500,
        help_text="Conversations without activity for this many days are deleted (daily job); 0 keeps them forever.",
    )
    uploads_allowed = forms.BooleanField(required=False, label="Members may upload documents to knowledge bases")
    private_personas = forms.BooleanField(required=False, label="Members may create private personas")

    def clean_allowed_models(self) -> list[str]:
        return _model_list(self.cleaned_data["allowed_models"])


class KnowledgeBaseForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(max_length=300, required=False)


class UploadForm(forms.Form):
    file = forms.FileField(help_text=".txt, .md, .html or .pdf (also .csv, .json, .log)")
