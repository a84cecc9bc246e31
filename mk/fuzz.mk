# mk/fuzz.mk - libFuzzer harnesses, bounded fuzz runs, static analysis (included by Makefile).
#
#   make fuzz              build every fuzz/fuzz_*.c harness (clang, libFuzzer, ASan, UBSan)
#   make fuzz-run          run each harness for FUZZ_SECONDS (default 20) on its committed corpus
#   make fuzz-run FUZZ_SECONDS=300 FUZZ_ONLY=http_request   a longer run of one harness
#   make lint              cppcheck and clang-tidy over the sources; any finding fails
#   make valgrind-proxy    test/faults.bats' proxy tests with the proxy under valgrind
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
FUZZ_CFLAGS  = -g -O1 -std=gnu11 -D_GNU_SOURCE -DAGENTJAIL_VERSION='"$(VERSION)"' -iquote . \
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
# Every suppression is a flag here with its reason; none is written into a source file.
LINT_SRCS = $(filter-out builtin_profiles.c,$(wildcard *.c))
# missingIncludeSystem: cppcheck is not given the system headers (it would misread their
# macros); the compiler, with -Wall -Wextra -Werror, does read them.
CPPCHECK_FLAGS := --enable=warning,performance,portability --std=c11 --error-exitcode=1 \
	--quiet -D_GNU_SOURCE -D__linux__ -iquote . \
	--suppress=missingIncludeSystem
CLANG_TIDY ?= clang-tidy

lint: builtin_profiles.c
	cppcheck $(CPPCHECK_FLAGS) $(LINT_SRCS)
	$(CLANG_TIDY) --quiet --warnings-as-errors='*' $(LINT_SRCS) -- \
		-std=gnu11 -D_GNU_SOURCE -iquote . $(PKGCFLAGS)

# ---- valgrind ----------------------------------------------------------------------------------
# The fault suite's proxy tests with the proxy (and the monitor) under valgrind: any error or
# leak fails (test/faults.bats reads AJ_VALGRIND).
valgrind-proxy: agentjail
	AJ_VALGRIND=1 bats test/faults.bats

.PHONY: fuzz fuzz-run lint valgrind-proxy
