"""The command lines of the console's interactive sessions, or why there is none.

- A container shell is `docker exec -it ID SHELL...` with the Docker CLI against the engine
  that reported the container (its address, and its TLS files when it has them).
- A VM's serial console is `virsh -c URI console NAME --force`: libvirt's console stream, which
  `virsh` relays until Ctrl+] (its escape). A guest whose domain has no serial or console
  device is told so before anything is attached.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from typing import Any

NO_DOCKER_CLI = "the docker command is not installed here: install the Docker CLI, or use x to run single commands"
NO_VIRSH = "the virsh command is not installed here: install libvirt-clients"


def docker_exec_argv(backend: Any, container_id: str, shell: tuple[str, ...]) -> tuple[list[str] | None, str]:
    docker = shutil.which("docker")
    if docker is None:
        return None, NO_DOCKER_CLI
    engine = getattr(backend, "engine", None)
    if engine is None:
        return None, "no Docker engine reported this container"
    argv = [docker, "--host", engine.host]
    tls = getattr(engine, "tls", None)
    if tls is not None:
        argv.append("--tlsverify" if tls.verify else "--tls")
        for flag, path in (("--tlscacert", tls.ca), ("--tlscert", tls.cert), ("--tlskey", tls.key)):
            if path:
                argv += [flag, path]
    return [*argv, "exec", "-it", container_id, *shell], ""


def virsh_console_argv(backend: Any, name: str) -> tuple[list[str] | None, str]:
    virsh = shutil.which("virsh")
    if virsh is None:
        return None, NO_VIRSH
    uri = getattr(backend, "uri", None)
    if uri is None or not callable(getattr(backend, "domain_xml", None)):
        return None, "no libvirt host reported this VM"
    if not has_serial_console(backend.domain_xml(name)):
        return None, f"{name} has no serial console: its domain defines no <serial> or <console> device"
    return [virsh, "-c", uri, "console", name, "--force"], ""


def has_serial_console(domain_xml: str) -> bool:
    devices = ET.fromstring(domain_xml).find("devices")
    return devices is not None and (devices.find("serial") is not None or devices.find("console") is not None)
