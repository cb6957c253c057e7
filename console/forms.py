"""Console forms. They validate input; the services do the writes."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from console.models import TOKEN_ROLES_FOR, DataClass, Membership, Organization, Role, Team

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


def form_error_apply(form: forms.Form, error: ValidationError) -> None:
    """Put a service's ValidationError on the form: on a field when the form has it."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            target = field if field in form.fields else None
            for item in errors:
                form.add_error(target, item.messages)
    else:
        form.add_error(None, error.messages)


def comma_list(value: str) -> list[str]:
    seen: list[str] = []
    for part in (value or "").split(","):
        part = part.strip()
        if part and part not in seen:
            seen.append(part)
    return seen


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format=DATETIME_LOCAL)


class TeamForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError("A team needs a name.")
        return name


class TeamMemberAddForm(forms.Form):
    user = forms.ModelChoiceField(queryset=get_user_model().objects.none(), empty_label="Choose a member")

    def __init__(self, *args, organization: Organization, team: Team, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = (
            get_user_model()
            .objects.filter(memberships__organization=organization)
            .exclude(gatehouse_teams=team)
            .order_by("username")
        )


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)

    def __init__(self, *args, can_grant_owner: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not can_grant_owner:
            self.fields["role"].choices = [c for c in Role.choices if c[0] != Role.OWNER]


class KeyStatusFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False,
        choices=[("", "All statuses"), ("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")],
    )


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=200)
    team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False, empty_label="No team")
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), required=False, empty_label="No user (service key)"
    )
    allowed_models = forms.MultipleChoiceField(
        required=False, help_text="None selected means every model in the registry."
    )
    expires_at = forms.DateTimeField(
        required=False,
        input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=DateTimeLocalInput(),
        label="Expires at (UTC)",
        help_text="Leave empty for a key that does not expire.",
    )
    data_classification = forms.ChoiceField(
        choices=DataClass.choices, initial=DataClass.INTERNAL, label="Data classification"
    )
    tags = forms.CharField(required=False, max_length=500, help_text="Comma-separated, e.g. prod, billing.")
    app_name = forms.CharField(required=False, max_length=200, label="App name")

    def __init__(
        self,
        *args,
        organization: Organization,
        model_names: list[str],
        teams,
        for_user=None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams
        self.fields["allowed_models"].choices = [(name, name) for name in model_names]
        if for_user is None:
            self.fields["user"].queryset = (
                get_user_model().objects.filter(memberships__organization=organization).order_by("username")
            )
        else:
            # A member issues keys for themselves only.
            del self.fields["user"]

    def clean_tags(self) -> list[str]:
        return comma_list(self.cleaned_data.get("tags", ""))


class OrganizationSwitchForm(forms.Form):
    organization = forms.IntegerField()

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_organization(self) -> Organization:
        membership = (
            Membership.objects.filter(user=self.user, organization_id=self.cleaned_data["organization"])
            .select_related("organization")
            .first()
        )
        if membership is None:
            raise ValidationError("You are not a member of that organization.")
        return membership.organization


EXPIRY_CHOICES = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (365, "1 year"), (0, "Never")]


class AdminTokenForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="What the token is for, e.g. “terraform in CI”.")
    role = forms.ChoiceField(help_text="What the token may do; never more than your own role.")
    expires_in_days = forms.TypedChoiceField(choices=EXPIRY_CHOICES, coerce=int, initial=90, label="Expires after")

    def __init__(self, *args, role: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        allowed = TOKEN_ROLES_FOR.get(role, ())
        self.fields["role"].choices = [(value, label) for value, label in Role.choices if value in allowed]
        self.fields["role"].initial = role
