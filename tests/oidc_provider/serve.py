"""Start the test identity provider: `python -m tests.oidc_provider.serve <spec.json>`.

The spec names the port, the SQLite file, the client (id, secret, redirect URI) and the
users with their groups. A fresh RS256 key is generated on every start. The server runs
until the process is terminated."""

from __future__ import annotations

import json
import os
import secrets
import sys


def main(spec_path: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    with open(spec_path) as handle:
        spec = json.load(handle)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    os.environ["OIDC_PROVIDER_RSA_KEY"] = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    os.environ["OIDC_PROVIDER_SECRET_KEY"] = secrets.token_urlsafe(50)
    os.environ["OIDC_PROVIDER_DB"] = spec["database"]
    os.environ["OIDC_PROVIDER_ISSUER"] = f"http://127.0.0.1:{spec['port']}/o"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.oidc_provider.settings"

    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.core.servers.basehttp import run
    from django.core.wsgi import get_wsgi_application
    from oauth2_provider.models import Application

    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
    for item in spec["users"]:
        user = User.objects.create_user(
            item["username"],
            email=item.get("email", ""),
            password=item["password"],
            first_name=item.get("first_name", ""),
            last_name=item.get("last_name", ""),
        )
        for name in item.get("groups", []):
            user.groups.add(Group.objects.get_or_create(name=name)[0])
    client = spec["client"]
    Application.objects.create(
        name="Gatehouse",
        client_id=client["id"],
        client_secret=client["secret"],
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=client["redirect_uri"],
        algorithm=Application.RS256_ALGORITHM,
        skip_authorization=client.get("skip_authorization", False),
    )
    run("127.0.0.1", spec["port"], get_wsgi_application(), threading=True)


if __name__ == "__main__":
    main(sys.argv[1])
