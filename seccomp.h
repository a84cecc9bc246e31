/* seccomp.h - the privilege floor: capability drop, no_new_privs, the syscall filter */
#ifndef AGENTJAIL_SECCOMP_H
#define AGENTJAIL_SECCOMP_H

/* Drop every capability: effective, permitted, inheritable, bounding, ambient. 0 or -1. */
int caps_drop_all(void);
/* Outside the jail: drop what capabilities this process holds (root: all of them). */
int caps_drop_held(void);
/* Set no_new_privs and load the jail's filter for this thread and its children. 0 or -1. */
int seccomp_apply(void);
/* The same with the proxy's filter (no exec, no mounts, no tracing). 0 or -1. */
int seccomp_apply_proxy(void);
/* The libseccomp version that compiled the filters, for --version. */
extern const char seccomp_built_with[];

#endif
