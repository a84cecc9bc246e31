/* util.h - small helpers shared by every module: checked allocation, messages, vectors */
#ifndef AGENTJAIL_UTIL_H
#define AGENTJAIL_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Exit codes of the contract with callers (see README). */
#define EXIT_JAIL_FAILED   125
#define EXIT_NOT_EXEC      126
#define EXIT_NOT_FOUND     127

/* Print "agentjail: ..." to stderr. */
void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Called by die() before it exits, if set (the monitor restores a terminal it made raw). */
extern void (*die_hook)(void);
/* msg() then _exit(EXIT_JAIL_FAILED); for setup failures: never half a jail. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* die() with ": strerror(errno)" appended. */
void die_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Overwrite memory the compiler may not optimise away (for secret values). */
void wipe(void *p, size_t n);

/* write()/read() the whole buffer, retrying on EINTR and short counts. 0 or -1. */
int write_all(int fd, const void *buf, size_t len);
int read_all(int fd, void *buf, size_t len);
/* Write a small string to a file (e.g. /proc/self/uid_map). 0 or -1 with errno. */
int write_file(const char *path, const char *s);

/*
 * A growable array of T: VEC(T) declares { T *v; size_t n, cap; }.
 * VEC_PUSH returns a pointer to the new, zeroed slot.
 */
#define VEC(T)                                                                                     \
	struct {                                                                                   \
		T *v;                                                                              \
		size_t n, cap;                                                                     \
	}
#define VEC_PUSH(vec)                                                                              \
	(vec_grow((void **)&(vec).v, &(vec).cap, (vec).n + 1, sizeof(*(vec).v)),                   \
	 &(vec).v[(vec).n++])
void vec_grow(void **v, size_t *cap, size_t need, size_t elem);

#endif
