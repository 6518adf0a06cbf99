"""App hosts: orderflow in a venv, its settings file, and systemd units for every process.

Services restart only when what they run changed: the installed code, the settings file or
their unit file.

``kafka_security: sasl_ssl``: each process authenticates as its own SCRAM principal
(processors/acls.py): ``main``, ``retry``, ``operator`` (the dashboard), ``admin`` (topics),
``console`` (Redpanda Console). Its unit reads ``/etc/orderflow/credentials/<principal>.env``
(user, mechanism, CA: a second ``EnvironmentFile=``) and gets its password as the systemd
credential ``orderflow_sasl_password`` (``LoadCredential=`` of ``<principal>.password``), which
processors/settings.py reads from ``$CREDENTIALS_DIRECTORY``: both files 0600 and root's, so no
process sees another principal's password. The CA is ``/etc/orderflow/tls/ca.pem``. One app host
sets every principal's ACLs as the broker super user (``orderflow kafka acls``), from
credentials it removes right after.
"""

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.files import File, FileContents
from pyinfra.operations import files, pip, server, systemd
from pyinfra.operations.util import any_changed

from deploy.tasks import packages, security

DEPLOY_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = DEPLOY_DIR.parent
# What `pip wheel` needs from this checkout to build the orderflow distribution.
WHEEL_SOURCES = ("pyproject.toml", "README.md", "processors", "dashboard", "deploy")
data = host.data


def _source_files() -> list[Path]:
    found: list[Path] = []
    for name in WHEEL_SOURCES:
        path = REPO_DIR / name
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(
                item
                for item in sorted(path.rglob("*"))
                if item.is_file() and "__pycache__" not in item.parts and item.suffix != ".pyc"
            )
    return found


def _build_wheel() -> Path:
    """Build the orderflow wheel from this checkout, once per distinct source tree.

    Cached under build/deploy-wheel/<source hash>/, so an unchanged tree gives the same file
    (and the same checksum on the hosts), whatever the number of deploys.
    """
    sources = _source_files()
    digest = hashlib.sha256()
    for path in sources:
        digest.update(str(path.relative_to(REPO_DIR)).encode() + b"\0" + path.read_bytes())
    cache = REPO_DIR / "build" / "deploy-wheel" / digest.hexdigest()[:16]
    wheels = sorted(cache.glob("orderflow-*.whl"))
    if wheels:
        return wheels[0]

    # With setuptools at hand, no build environment is fetched from PyPI (a flaky step offline).
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    with tempfile.TemporaryDirectory(prefix="orderflow-wheel-") as tmp:
        tree = Path(tmp) / "src"
        for path in sources:
            target = tree / path.relative_to(REPO_DIR)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "-q",
                *isolation,
                "-w",
                f"{tmp}/dist",
                tree,
            ],
            capture_output=True,
            text=True,
            # Fixed timestamps inside the archive: the same sources give the same bytes.
            env={**os.environ, "SOURCE_DATE_EPOCH": "315532800"},
            check=False,
        )
        built = sorted(Path(tmp, "dist").glob("orderflow-*.whl"))
        if result.returncode != 0 or not built:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise DeployError(f"building the orderflow wheel failed: {last}")
        cache.mkdir(parents=True, exist_ok=True)
        staged = cache / f".{built[0].name}.partial"
        shutil.copy2(built[0], staged)
        # Atomic: a concurrent deploy sees either no wheel or the whole wheel.
        staged.replace(cache / built[0].name)
        return cache / built[0].name


wheel = Path(data.orderflow_wheel) if data.orderflow_wheel else _build_wheel()
# The runtime's dependencies, pinned with their hashes (`make lock`): hosts install exactly these
# files, and nothing of the cloud tooling (pulumi, pyinfra).
lock = DEPLOY_DIR / "requirements.lock"
wheel_sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
# What the venv holds: this wheel on these locked dependencies.
install_id = hashlib.sha256(wheel_sha256.encode() + lock.read_bytes()).hexdigest()
venv = data.orderflow_venv
remote_wheel = f"{data.orderflow_home}/dist/{wheel.name}"
remote_lock = f"{data.orderflow_home}/dist/requirements.lock"
installed_marker = f"{venv}/.orderflow-wheel.sha256"
state_dir = data.orderflow_state_dir
for _name, _path in (
    ("orderflow_state_dir", state_dir),
    ("dashboard_state_dir", data.dashboard_state_dir),
):
    if not _path.startswith("/var/lib/"):
        raise DeployError(f"{_name} must be under /var/lib/, not {_path}")

if data.ui_host:
    server.group(name="Create the dashboard's system group", group=data.dashboard_user, system=True)
    # Its own user: a flaw in the web UI reaches neither the processors' state nor their files.
    server.user(
        name="Create the dashboard's system user",
        user=data.dashboard_user,
        group=data.dashboard_user,
        system=True,
        home=data.dashboard_state_dir,
        shell="/usr/sbin/nologin",
        create_home=False,
        # systemd creates and owns its state directory (StateDirectory=).
        ensure_home=False,
    )

packages.install(["python3", "python3-venv"], name="Install Python with venv support")

files.directory(
    name="Create the orderflow install directory",
    path=f"{data.orderflow_home}/dist",
    user="root",
    group="root",
    mode="755",
)

# Traversable by every service user; each file in it carries its own owner and mode (the
# settings file is read by systemd alone, the credentials directory is root's).
files.directory(
    name="Create the orderflow settings directory",
    path=data.orderflow_config_dir,
    user="root",
    group="root",
    mode="755",
)

files.directory(
    name="Create the orderflow state directory",
    path=state_dir,
    user=data.orderflow_user,
    group=data.orderflow_user,
    mode="750",
)

pip.venv(
    name="Create the orderflow virtualenv",
    path=venv,
    python="python3",
)

files.put(
    name="Upload the orderflow wheel",
    src=str(wheel),
    dest=remote_wheel,
    user="root",
    group="root",
    mode="644",
)

files.put(
    name="Upload the hash-locked requirements",
    src=str(lock),
    dest=remote_lock,
    user="root",
    group="root",
    mode="644",
)

# Offline: every dependency from a wheelhouse built here, nothing from PyPI (the hash lock is
# for the hosts' own index access; the wheelhouse is built for the host's Python and platform).
index_options = packages.wheelhouse(wheel, f"{data.orderflow_home}/wheelhouse")
if index_options:
    install_commands = [
        f"{venv}/bin/pip install --quiet --no-cache-dir {index_options} {remote_wheel}",
        # Same version number, new code: replace the package itself too.
        f"{venv}/bin/pip install --quiet --no-cache-dir --no-deps --force-reinstall "
        f"{index_options} {remote_wheel}",
    ]
else:
    install_commands = [
        # Every file checked against its locked hash; anything unpinned is refused.
        f"{venv}/bin/pip install --quiet --no-cache-dir --require-hashes -r {remote_lock}",
        # Our own wheel (built here, not on PyPI) on top, without resolving anything.
        f"{venv}/bin/pip install --quiet --no-cache-dir --no-deps --force-reinstall {remote_wheel}",
    ]

# The marker records which wheel the venv holds; a failed install leaves it unchanged, so the
# next deploy retries instead of believing the upload was enough.
restart_triggers = []
installed = host.get_fact(FileContents, installed_marker)
if installed != [install_id]:
    restart_triggers.append(
        server.shell(
            name="Install orderflow into the virtualenv",
            commands=[
                *install_commands,
                f"echo {install_id} > {installed_marker}",
            ],
        )
    )

settings = {
    **{key.upper(): value for key, value in data.orderflow_settings.items()},
    "BOOTSTRAP_SERVERS": data.bootstrap_servers,
    "REPLICATION_FACTOR": data.kafka_replication_factor,
}
for key, value in settings.items():
    if any(char in str(value) for char in "\n\"'\\$ "):
        raise DeployError(f"orderflow setting {key} has characters systemd would not keep")
env_file = files.template(
    name="Render the orderflow settings file",
    src=str(DEPLOY_DIR / "templates" / "orderflow.env.j2"),
    dest=data.orderflow_env_file,
    user="root",
    group=data.orderflow_user,
    mode="640",
    settings=settings,
)
restart_triggers.append(env_file)

secured = security.secured(data)
credentials_dir = f"{data.orderflow_config_dir}/credentials"
ca_location = f"{data.orderflow_config_dir}/tls/ca.pem"


def credentials_file(principal: str) -> str:
    """The principal's non-secret client settings (``EnvironmentFile=``)."""
    return f"{credentials_dir}/{principal}.env"


def password_file(principal: str) -> str:
    """The principal's password, handed to its unit alone (``LoadCredential=``)."""
    return f"{credentials_dir}/{principal}.password"


def load_password(principal: str) -> str:
    return f"{security.PASSWORD_CREDENTIAL}:{password_file(principal)}"


def _run_as_service_user(*env_files: str, principal: str | None = None) -> str:
    """A ``systemd-run`` prefix: the service user, sandboxed, with these environment files
    (and ``principal``'s password as a systemd credential)."""
    properties = [f"-p EnvironmentFile={path}" for path in env_files]
    if principal:
        properties.append(f"-p LoadCredential={load_password(principal)}")
    return (
        "systemd-run --wait --pipe --quiet --collect "
        f"--uid={data.orderflow_user} --gid={data.orderflow_user} "
        f"{' '.join(properties)} -p NoNewPrivileges=yes "
    )


def _credential_files(principal: str, **arguments) -> list:
    """Upload ``principal``'s client settings and password: 0600, root's (systemd reads them
    for the unit; the processes, all of the same user, never see each other's)."""
    return [
        files.put(
            name=f"Upload the {principal} principal's Kafka client settings",
            src=StringIO(security.client_settings(principal, ca_location)),
            dest=credentials_file(principal),
            user="root",
            group="root",
            mode="600",
            **arguments,
        ),
        files.put(
            name=f"Upload the {principal} principal's Kafka password",
            src=StringIO(security.password(data, principal)),
            dest=password_file(principal),
            user="root",
            group="root",
            mode="600",
            **arguments,
        ),
    ]


if secured:
    # A CA certificate is public: every service user (processors, dashboard) reads it.
    files.directory(
        name="Create the orderflow TLS directory",
        path=f"{data.orderflow_config_dir}/tls",
        user="root",
        group="root",
        mode="755",
    )
    restart_triggers.append(
        files.put(
            name="Upload the Kafka CA certificate (what the clients trust)",
            src=str(security.ca_file(data)),
            dest=ca_location,
            user="root",
            group="root",
            mode="644",
        )
    )
    files.directory(
        name="Create the orderflow credentials directory",
        path=credentials_dir,
        user="root",
        group="root",
        mode="700",
    )
    principals = ["main", "retry", "admin", *(["operator"] if data.ui_host else [])]
    credential_uploads = {principal: _credential_files(principal) for principal in principals}
    # The super user's password stays on the app host only while the ACLs are set.
    _credential_files("broker", _run_once=True)
    server.shell(
        name="Set the ACLs of every principal (once, from one app host)",
        commands=[
            _run_as_service_user(
                data.orderflow_env_file, credentials_file("broker"), principal="broker"
            )
            + f"{venv}/bin/orderflow kafka acls; rc=$?; "
            f"rm -f {credentials_file('broker')} {password_file('broker')}; exit $rc"
        ],
        _run_once=True,
    )

# Topics before processors: brokers never auto-create them. Idempotent; a topic that exists
# with other partitions or config is drift and fails the deploy. Runs as the service user with
# the services' own settings file (secured: as the admin principal).
server.shell(
    name="Create the orderflow topics (once, from one app host)",
    commands=[
        _run_as_service_user(data.orderflow_env_file, credentials_file("admin"), principal="admin")
        if secured
        else _run_as_service_user(data.orderflow_env_file) + f"{venv}/bin/orderflow topics create"
    ],
    _run_once=True,
)

unit_common = {
    "service_user": data.orderflow_user,
    "env_file": data.orderflow_env_file,
    "venv": venv,
    "state_dir": state_dir,
    "state_dir_name": state_dir.removeprefix("/var/lib/"),
}
units = {
    "orderflow-main@.service": {
        "description": "orderflow main processor (instance %i)",
        "command": "main",
        "instance_id": "%H-%i",
        "state_subdir": "%p-%i",
        "credentials_file": credentials_file("main") if secured else None,
        "load_credential": load_password("main") if secured else None,
    },
    "orderflow-retry@.service": {
        "description": "orderflow retry processor (instance %i)",
        "command": "retry",
        "instance_id": "%H-%i",
        "state_subdir": "%p-%i",
        "credentials_file": credentials_file("retry") if secured else None,
        "load_credential": load_password("retry") if secured else None,
    },
}
if data.ui_host:
    # Private by default: loopback, reached through SSM port forwarding, no password needed.
    # Public (Pulumi publicDashboard): the private IP, behind a password the dashboard requires.
    dashboard_command = f"dashboard --address 127.0.0.1 --port {data.dashboard_port}"
    if data.dashboard_public:
        dashboard_command = (
            f"dashboard --address {data.private_ip} --port {data.dashboard_port} "
            f"--secrets {data.dashboard_secrets_file}"
        )
        if host.get_fact(File, path=data.dashboard_secrets_file) is None:
            # Generated on the host: the password never travels through this machine or its logs.
            server.shell(
                name="Generate the dashboard password",
                commands=[
                    f"umask 027 && printf '[auth]\\npassword = \"%s\"\\n' "
                    f'"$(openssl rand -hex 16)" > {data.dashboard_secrets_file}',
                    f"chown root:{data.dashboard_user} {data.dashboard_secrets_file}",
                ],
            )
    units["orderflow-dashboard.service"] = {
        "description": f"orderflow dashboard (port {data.dashboard_port})",
        "command": dashboard_command,
        "instance_id": "%H-dashboard",
        "service_user": data.dashboard_user,
        "state_dir": data.dashboard_state_dir,
        "state_dir_name": data.dashboard_state_dir.removeprefix("/var/lib/"),
        "state_subdir": None,
        "credentials_file": credentials_file("operator") if secured else None,
        "load_credential": load_password("operator") if secured else None,
    }
unit_files = {
    unit: files.template(
        name=f"Install the {unit} unit",
        src=str(DEPLOY_DIR / "templates" / "orderflow.service.j2"),
        dest=f"/etc/systemd/system/{unit}",
        user="root",
        group="root",
        mode="644",
        unit=unit,
        **{**unit_common, **values},
    )
    for unit, values in units.items()
}

systemd.daemon_reload(
    name="Reload systemd units",
    _if=any_changed(*unit_files.values()),
)

# try-restart restarts running instances only, including any scaled up by hand.
server.shell(
    name="Restart the processors (code, settings or unit changed)",
    commands=["systemctl try-restart 'orderflow-main@*.service' 'orderflow-retry@*.service'"],
    _if=any_changed(
        *restart_triggers,
        unit_files["orderflow-main@.service"],
        unit_files["orderflow-retry@.service"],
        *([*credential_uploads["main"], *credential_uploads["retry"]] if secured else []),
    ),
)
if data.ui_host:
    server.shell(
        name="Restart the dashboard (code, settings or unit changed)",
        commands=["systemctl try-restart orderflow-dashboard.service"],
        _if=any_changed(
            *restart_triggers,
            unit_files["orderflow-dashboard.service"],
            *(credential_uploads["operator"] if secured else []),
        ),
    )

instances = [
    *(f"orderflow-main@{n}.service" for n in range(1, data.orderflow_main_instances + 1)),
    *(f"orderflow-retry@{n}.service" for n in range(1, data.orderflow_retry_instances + 1)),
    *(["orderflow-dashboard.service"] if data.ui_host else []),
]
for service in instances:
    systemd.service(
        name=f"Run {service} at boot",
        service=service,
        running=True,
        enabled=True,
    )
