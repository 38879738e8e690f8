"""Create or update the Superset admin, then import the platform's assets (the last step of init.sh).

Runs with Superset's own Python in both stacks: ``python bootstrap.py DASHBOARDS_DIR``.

The assets are the YAML tree of a Superset export (metadata.yaml, databases/, datasets/, charts/,
dashboards/) kept in compose/superset/dashboards/. Superset's assets importer overwrites every
object by UUID, so the repository stays the source of truth and running this again is safe.

Before import, each database of the tree is pointed at this stack: the hive:// one at
SUPERSET_HIVE_URI, the postgresql one at SUPERSET_SERVING_URI. The serving database's password,
when the stack has one (POSTGRES_PASSWORD), goes to the importer in memory: never to a file or a
command line. The admin's password (SUPERSET_ADMIN_PASSWORD) is set on every run, so changing it
in the environment and re-running the init changes it in Superset.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml
from sqlalchemy.engine import make_url

# Backend of a database's URI in the tree -> environment variable with this stack's URI for it.
URI_ENV = {"hive": "SUPERSET_HIVE_URI", "postgresql": "SUPERSET_SERVING_URI"}
PASSWORD_ENV = {"postgresql": "POSTGRES_PASSWORD"}


def read_tree(root: Path) -> dict[str, str]:
    """Every YAML file of the tree by its path under the root, as the importer names them."""
    return {path.relative_to(root).as_posix(): path.read_text() for path in sorted(root.rglob("*.yaml"))}


def point_databases_at_this_stack(contents: dict[str, str], password_mask: str) -> dict[str, str]:
    """Rewrite each database's URI from the environment; return the importer's passwords by file."""
    passwords = {}
    for name, text in contents.items():
        if not name.startswith("databases/"):
            continue
        config = yaml.safe_load(text)
        backend = make_url(config["sqlalchemy_uri"]).get_backend_name()
        url = make_url(os.environ[URI_ENV[backend]])
        password = os.environ.get(PASSWORD_ENV.get(backend, ""), "")
        if password:
            passwords[name] = password
            url = url.set(password=password_mask)  # the importer takes the password for a masked URI
        config["sqlalchemy_uri"] = url.render_as_string(hide_password=False)
        contents[name] = yaml.safe_dump(config, sort_keys=False)
    return passwords


def ensure_admin(security_manager, username: str, password: str, email: str):
    user = security_manager.find_user(username=username)
    if user is None:
        role = security_manager.find_role(security_manager.auth_role_admin)
        user = security_manager.add_user(username, "Admin", "CDR", email, role, password)
        if not user:
            sys.exit(f"could not create the Superset admin {username!r} (see the log above)")
    else:
        security_manager.reset_password(user.id, password)
    return user


def main(root: Path) -> None:
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset import security_manager
        from superset.commands.importers.v1.assets import ImportAssetsCommand
        from superset.constants import PASSWORD_MASK
        from superset.utils.core import override_user

        username = os.environ["SUPERSET_ADMIN_USER"]
        admin = ensure_admin(
            security_manager,
            username,
            os.environ["SUPERSET_ADMIN_PASSWORD"],
            os.environ.get("SUPERSET_ADMIN_EMAIL", "admin@example.org"),
        )
        contents = read_tree(root)
        passwords = point_databases_at_this_stack(contents, PASSWORD_MASK)
        with override_user(admin):
            ImportAssetsCommand(contents, passwords=passwords).run()
    kinds = sorted({name.split("/")[0] for name in contents if "/" in name})
    counts = ", ".join(f"{sum(n.startswith(kind + '/') for n in contents)} {kind}" for kind in kinds)
    print(f"Superset ready: admin {username!r}; imported {counts} from {root}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
