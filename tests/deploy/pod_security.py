"""The Pod Security Standards' "restricted" profile (the baseline's controls included), as the
API server's admission applies it to a pod template, for the fields our manifests can set.
https://kubernetes.io/docs/concepts/security/pod-security-standards/ is the reference; each
message below names its control."""

from typing import Any

ALLOWED_VOLUME_KINDS = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
ALLOWED_SELINUX_TYPES = {None, "", "container_t", "container_init_t", "container_kvm_t"}


def violations(pod: dict[str, Any]) -> list[str]:
    """What in a pod spec the restricted profile refuses (empty: admitted)."""
    found: list[str] = []
    pod_context = pod.get("securityContext") or {}
    every = [
        c
        for kind in ("initContainers", "containers", "ephemeralContainers")
        for c in pod.get(kind, [])
    ]

    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            found.append(f"host namespaces: {field} is true")
    if (pod_context.get("windowsOptions") or {}).get("hostProcess"):
        found.append("HostProcess: the pod is a host process")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if "hostPath" in kinds:
            found.append(f"hostPath volumes: {volume['name']}")
        if not kinds <= ALLOWED_VOLUME_KINDS:
            found.append(f"volume types: {volume['name']} is {sorted(kinds)}")
    for sysctl in pod_context.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            found.append(f"sysctls: {sysctl['name']}")
    found += _selinux(pod_context.get("seLinuxOptions"), "the pod")
    found += _apparmor(pod_context.get("appArmorProfile"), "the pod")

    pod_non_root = pod_context.get("runAsNonRoot")
    pod_seccomp = (pod_context.get("seccompProfile") or {}).get("type")
    if pod_non_root is False:
        found.append("running as non-root: the pod sets runAsNonRoot false")
    if pod_context.get("runAsUser") == 0:
        found.append("running as non-root user: the pod sets runAsUser 0")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        found.append(f"seccomp: the pod's profile is {pod_seccomp}")

    for container in every:
        name = container["name"]
        context = container.get("securityContext") or {}
        capabilities = context.get("capabilities") or {}
        if context.get("privileged"):
            found.append(f"privileged containers: {name}")
        if (context.get("windowsOptions") or {}).get("hostProcess"):
            found.append(f"HostProcess: {name}")
        if any(port.get("hostPort") for port in container.get("ports", [])):
            found.append(f"host ports: {name}")
        if context.get("procMount", "Default") != "Default":
            found.append(f"/proc mount type: {name}")
        found += _selinux(context.get("seLinuxOptions"), name)
        found += _apparmor(context.get("appArmorProfile"), name)
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(
                f"privilege escalation: {name} does not set allowPrivilegeEscalation false"
            )
        non_root = context.get("runAsNonRoot", pod_non_root)
        if non_root is not True:
            found.append(f"running as non-root: {name} is not made to run as non-root")
        if context.get("runAsUser") == 0:
            found.append(f"running as non-root user: {name} sets runAsUser 0")
        seccomp = (context.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"seccomp: {name} has profile {seccomp}")
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"capabilities: {name} does not drop ALL")
        added = set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}
        if added:
            found.append(f"capabilities: {name} adds {sorted(added)}")
    return found


def _selinux(options: dict[str, Any] | None, where: str) -> list[str]:
    if not options:
        return []
    found = []
    if options.get("type") not in ALLOWED_SELINUX_TYPES:
        found.append(f"SELinux: {where} sets type {options['type']}")
    if options.get("user") or options.get("role"):
        found.append(f"SELinux: {where} sets a user or role")
    return found


def _apparmor(profile: dict[str, Any] | None, where: str) -> list[str]:
    if profile and profile.get("type") == "Unconfined":
        return [f"AppArmor: {where} is unconfined"]
    return []
