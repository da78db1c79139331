"""The system calls a student's kernel may not make: a seccomp filter (runs inside the sandbox,
beside kernel.py; no course knowledge).

Built with libseccomp (``libseccomp2``, on every Debian and Ubuntu as apt's own dependency)
through ``pyseccomp``, its ctypes binding with the API of libseccomp's own Python bindings (those
are packaged for the system Python only, not on PyPI). Everything is allowed but what no notebook
needs, after Docker's default profile: the kernel keyrings (a key written there outlives the
sandbox, in the instructor's keyring), ``ptrace`` and the other ways into another process's memory,
new namespaces and mounts (the child's own are made before the filter), kernel modules, BPF,
``perf_event_open``, ``userfaultfd``, io_uring (whose requests the filter does not see), clocks,
swap, reboot. Denied calls fail with EPERM, as in a container; ``clone3`` fails with ENOSYS, so
that the C library falls back to ``clone``, whose flags the filter can read. A call of another
architecture (32-bit calls from a 64-bit process) kills the process (libseccomp's default).
"""
from __future__ import annotations

import errno

DENIED = (
    "add_key", "keyctl", "request_key",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "unshare", "setns", "mount", "umount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "name_to_handle_at", "open_by_handle_at",
    "init_module", "finit_module", "delete_module", "create_module", "kexec_load", "kexec_file_load",
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "acct", "quotactl", "quotactl_fd", "swapon", "swapoff", "reboot", "syslog", "lookup_dcookie",
    "settimeofday", "clock_settime", "clock_adjtime", "stime", "iopl", "ioperm", "vhangup",
    "uselib", "ustat", "sysfs", "_sysctl", "nfsservctl", "get_kernel_syms", "query_module",
    "fanotify_init", "vm86", "vm86old",
)
# clone's namespace flags (the first argument on x86-64 and arm64): CLONE_NEWTIME, NEWNS,
# NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
NAMESPACE_FLAGS = (0x80, 0x20000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)


def build():
    """The filter, ready to ``load()`` (built once in the warm parent, loaded in each child)."""
    import pyseccomp as seccomp
    flt = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in DENIED:
        try:
            flt.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except (OSError, ValueError, RuntimeError):   # no such call on this architecture
            pass
    flt.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    for flag in NAMESPACE_FLAGS:
        flt.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    return flt
