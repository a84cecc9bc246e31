/* profiles.h - the built-in profiles, embedded from profiles/NAME.ini at build time */
#ifndef AGENTJAIL_PROFILES_H
#define AGENTJAIL_PROFILES_H

#include <stddef.h>

struct builtin_profile {
	const char *name; /* file name without .ini */
	const char *text; /* NUL-terminated INI text */
	size_t len;
};

/* Terminated by an entry whose name is NULL. */
extern const struct builtin_profile builtin_profiles[];

#endif
