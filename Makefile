# agentjail - build, test, install.  See README.md.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DESTDIR ?=
VERSION := 0.1.0

CC      ?= cc
PKGS    := libcap libseccomp openssl inih
CFLAGS  ?= -O2 -g
# Recursive (=) so that pkg-config runs when a recipe needs it, i.e. after `make deps`.
PKGCFLAGS = $(shell pkg-config --cflags $(PKGS))
# OpenSSL is not linked: ossl.c loads the system's libssl.so.3 when the proxy first needs it,
# so a start without TLS does not pay ~1 ms to relocate it, and its security updates still
# reach agentjail without a rebuild (static linking would have stopped that). libseccomp
# is needed only to build: gen/seccomp_filter.c compiles the filters into build/.
PKGLIBS   = $(shell pkg-config --libs $(filter-out openssl libseccomp,$(PKGS)))
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter \
	   -fstack-protector-strong -D_FORTIFY_SOURCE=2 -D_GNU_SOURCE -fPIE -iquote build \
	   -DAGENTJAIL_VERSION='"$(VERSION)"' $(PKGCFLAGS) \
	   -DLIBCAP_VERSION='"$(shell pkg-config --modversion libcap)"' \
	   -DINIH_VERSION='"$(shell pkg-config --modversion inih)"'
LDFLAGS += -pie -Wl,-z,relro,-z,now
LDLIBS  += $(PKGLIBS)

# Every top-level .c is a module of the one binary; builtin_profiles.c is generated.
SRCS    := $(filter-out builtin_profiles.c,$(wildcard *.c)) builtin_profiles.c
OBJS    := $(SRCS:%.c=build/%.o)
ASANOBJS:= $(SRCS:%.c=build/asan/%.o)
HDRS    := $(wildcard *.h)
PROFILES:= $(sort $(wildcard profiles/*.ini))
ASANFLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	     -fno-omit-frame-pointer

# Unit tests: test/unit/NAME.c linked against every module but the CLI (main). They may call
# OpenSSL themselves (e.g. to inspect a minted certificate), so they link it.
UNITLIBS = $(shell pkg-config --libs openssl)
UNITS   := $(patsubst %.c,%,$(wildcard test/unit/*.c))
LIBOBJS  = $(filter-out build/agentjail.o,$(OBJS))

all: agentjail test/probe $(UNITS)

test/unit/%: test/unit/%.c $(LIBOBJS) $(HDRS)
	$(CC) $(CFLAGS) -I. $(LDFLAGS) -o $@ $< $(LIBOBJS) $(LDLIBS) $(UNITLIBS)

agentjail: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

build/%.o: %.c $(HDRS) | build
	$(CC) $(CFLAGS) -c -o $@ $<

# The seccomp filters, compiled to BPF on this machine (see gen/seccomp_filter.c).
build/seccomp_bpf.h: gen/seccomp_filter.c | build
	$(CC) $(CFLAGS) -o build/seccomp_filter $< $(shell pkg-config --libs libseccomp)
	build/seccomp_filter > $@.tmp && mv $@.tmp $@
build/seccomp.o build/asan/seccomp.o build/fuzz/seccomp.o build/valgrind/seccomp.o: \
	build/seccomp_bpf.h

builtin_profiles.c: $(PROFILES) profiles/embed.sh
	sh profiles/embed.sh $(PROFILES) > $@.tmp && mv $@.tmp $@

# ASan+UBSan build of the same sources; the test suite runs against it too.
asan: agentjail-asan test/probe
agentjail-asan: $(ASANOBJS)
	$(CC) $(LDFLAGS) $(ASANFLAGS) -o $@ $(ASANOBJS) $(LDLIBS)
build/asan/%.o: %.c $(HDRS) | build
	$(CC) $(CFLAGS) $(ASANFLAGS) -U_FORTIFY_SOURCE -c -o $@ $<

# Small C probe the tests use where a shell cannot reach (ioctl, raw syscalls).
test/probe: test/probe.c
	$(CC) -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE -o $@ $< $(shell pkg-config --cflags --libs libseccomp 2>/dev/null)

build:
	mkdir -p build/asan

# Installs what is missing (Debian), builds, runs every suite as an unprivileged user.
check: all asan
	test/run

# Installs what is missing, builds, and runs the built-in demo.
demo: all
	demo/prompt-injection.sh

deps:
	sh .ci/deps.sh

# install, uninstall, deb: mk/install.mk. fuzz, lint: mk/fuzz.mk. bench: mk/bench.mk.
-include mk/install.mk
-include mk/fuzz.mk
-include mk/bench.mk

format:
	clang-format -i *.c *.h test/*.c

clean:
	rm -rf build agentjail agentjail-asan test/probe builtin_profiles.c $(UNITS)

.PHONY: all asan check demo deps format clean
