/* guard.h - workspace files that run later outside the jail: protect before, check after */
#ifndef AGENTJAIL_GUARD_H
#define AGENTJAIL_GUARD_H

#include "policy.h"

/* Add read-only binds for what exists; remember the start time. Exits 125 on a bad .git. */
void guard_protect(struct policy *p, const char *workspace);
/* After the command: quarantine git indirections, warn about what appeared. */
void guard_check(void);
/* The jail was never built: undo what guard_protect created. */
void guard_abort(void);

#endif
