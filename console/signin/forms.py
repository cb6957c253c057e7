"""Forms of signing in, the second factor, invitations and the sign-in policy."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from console.models import Role
from console.signin.backends import SSO_REQUIRED_FLAG

SSO_REQUIRED_MESSAGE = "Your organization signs in with single sign-on only. Use the single sign-on button."


class SignInForm(AuthenticationForm):
    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            if self.request is not None and getattr(self.request, SSO_REQUIRED_FLAG, False):
                raise ValidationError(SSO_REQUIRED_MESSAGE, code="sso_required") from None
            raise


class TotpCodeForm(forms.Form):
    code = forms.CharField(
        max_length=8,
        label="Authenticator code",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].replace(" ", "")
        if not code.isdigit():
            raise ValidationError("Enter the digits your authenticator app shows.")
        return code


class InvitationForm(forms.Form):
    email = forms.EmailField(label="E-mail address")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)
    send_email = forms.BooleanField(required=False, initial=True, label="E-mail the link")

    def __init__(self, *args, can_grant_owner: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not can_grant_owner:
            self.fields["role"].choices = [c for c in Role.choices if c[0] != Role.OWNER]


class JoinSignupForm(forms.Form):
    """A new account made from an invitation link."""

    username = forms.CharField(max_length=150)
    email = forms.EmailField(label="E-mail address")
    password1 = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput)
    password2 = forms.CharField(label="Password again", strip=False, widget=forms.PasswordInput)

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        field = get_user_model()._meta.get_field("username")
        for validator in field.validators:
            validator(username)
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise ValidationError("This username is taken; choose another (or sign in if it is yours).")
        return username

    def clean(self):
        data = super().clean()
        password = data.get("password1")
        if password and password != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        elif password and data.get("username"):
            candidate = get_user_model()(username=data["username"], email=data.get("email", ""))
            try:
                password_validation.validate_password(password, user=candidate)
            except ValidationError as exc:
                self.add_error("password1", exc)
        return data


class SignInPolicyForm(forms.Form):
    require_sso = forms.BooleanField(required=False, label="Require single sign-on")
    require_totp = forms.BooleanField(required=False, label="Require a second factor for password sign-in")


class SsoMappingForm(forms.Form):
    group = forms.CharField(max_length=200, label="Identity-provider group")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)

    def __init__(self, *args, can_grant_owner: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not can_grant_owner:
            self.fields["role"].choices = [c for c in Role.choices if c[0] != Role.OWNER]
