/* seccomp.h - the privilege floor: capability drop, no_new_privs, the syscall filter */
#ifndef AGENTJAIL_SECCOMP_H
#define AGENTJAIL_SECCOMP_H

/* Drop every capability: effective, permitted, inheritable, bounding, ambient. 0 or -1. */
int caps_drop_all(void);
/* Outside the jail: drop what capabilities this process holds (root: all of them). */
int caps_drop_held(void);
/* Compile the filter once (else seccomp_apply does). 0 or -1. */
int seccomp_prepare(void);
/* Set no_new_privs and load the jail's filter for this thread and its children. 0 or -1. */
int seccomp_apply(void);

#endif
