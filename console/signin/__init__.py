"""Signing in and joining: invitations, login protection, the second factor and single sign-on."""
