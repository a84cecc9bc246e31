#!/usr/bin/env bats
# A bounded run of every libFuzzer harness (fuzz/fuzz_*.c, built by `make fuzz`): first the
# committed corpus fuzz/corpus/NAME (seeds and the regression inputs of past crashes),
# then FUZZ_TEST_SECONDS (default 10) of new inputs. Any sanitizer report, leak or broken
# property fails the test and prints the input, in base64, to reproduce it with
#   base64 -d > crash && fuzz/fuzz_NAME crash
# Skipped, with the reason, when clang/libFuzzer is not installed.

load helpers

FUZZ_TEST_SECONDS="${FUZZ_TEST_SECONDS:-10}"

setup_file() {
	export FUZZ_BUILD_NOTE="" FUZZ_DIR="$REPO"
	if ! command -v clang >/dev/null 2>&1; then
		export FUZZ_BUILD_NOTE="clang is not installed (make deps)"
		return 0
	fi
	if ! ls "$REPO"/fuzz/fuzz_*.c >/dev/null 2>&1; then
		export FUZZ_BUILD_NOTE="no harnesses in fuzz/"
		return 0
	fi
	# Build what is missing or stale. A tree we cannot write (the suite runs as another
	# user) is copied, sources only, and built there.
	if ! [ -w "$REPO" ] || ! [ -w "$REPO/fuzz" ]; then
		FUZZ_DIR="$BATS_FILE_TMPDIR/tree"
		mkdir -p "$FUZZ_DIR"
		(cd "$REPO" && tar --exclude=./.git --exclude=./build --exclude='./fuzz/fuzz_*[!c]' \
			--exclude='./fuzz/corpus-out' -cf - ./*.c ./*.h Makefile mk gen profiles fuzz) |
			tar -C "$FUZZ_DIR" -xf - || export FUZZ_BUILD_NOTE="cannot copy the tree"
		export FUZZ_DIR
	fi
	make -C "$FUZZ_DIR" fuzz >"$BATS_FILE_TMPDIR/build.log" 2>&1 ||
		export FUZZ_BUILD_NOTE="make fuzz failed: $(tail -n 5 "$BATS_FILE_TMPDIR/build.log" | tr '\n' ' ')"
}

# fuzz_one NAME: run fuzz/fuzz_NAME on its corpus for FUZZ_TEST_SECONDS.
fuzz_one() {
	local n="$1" bin="$FUZZ_DIR/fuzz/fuzz_$1" out rc=0 dict=()
	case "$FUZZ_BUILD_NOTE" in
	"clang is not installed"* | "no harnesses"*) skip "$FUZZ_BUILD_NOTE" ;;
	esac
	[ -f "$REPO/fuzz/fuzz_$n.c" ] || skip "no fuzz/fuzz_$n.c"
	[ -x "$bin" ] || fail "fuzz/fuzz_$n was not built: ${FUZZ_BUILD_NOTE:-see make fuzz}"
	out="$BATS_TEST_TMPDIR/new"
	mkdir -p "$out" "$BATS_TEST_TMPDIR/art"
	[ -f "$REPO/fuzz/$n.dict" ] && dict=(-dict="$REPO/fuzz/$n.dict")
	# The harness itself is bounded: libFuzzer stops after max_total_time; timeout is
	# the backstop for a hang in the corpus replay.
	timeout --kill-after=10 $((FUZZ_TEST_SECONDS + 120)) "$bin" \
		-max_total_time="$FUZZ_TEST_SECONDS" -timeout=10 -rss_limit_mb=1024 \
		-print_final_stats=1 "${dict[@]}" -artifact_prefix="$BATS_TEST_TMPDIR/art/" \
		"$out" "$REPO/fuzz/corpus/$n" >"$BATS_TEST_TMPDIR/log" 2>&1 || rc=$?
	grep -E '^stat::number_of_executed_units' "$BATS_TEST_TMPDIR/log" |
		sed "s/^stat::number_of_executed_units: */# fuzz_$n executions: /" >&3 || true
	if [ "$rc" -ne 0 ]; then
		grep -E 'ERROR|property broken|runtime error|SUMMARY|^    #[0-9]+ ' \
			"$BATS_TEST_TMPDIR/log" | head -n 40
		for a in "$BATS_TEST_TMPDIR"/art/*; do
			[ -e "$a" ] || continue
			echo "input ${a##*/} (base64): $(base64 -w0 "$a" | head -c 4000)"
		done
		fail "fuzz_$n exited $rc"
	fi
}

@test "fuzz: HTTP request head (fuzz_http_request)" { fuzz_one http_request; }
@test "fuzz: HTTP response head (fuzz_http_response)" { fuzz_one http_response; }
@test "fuzz: chunked framing (fuzz_chunked)" { fuzz_one chunked; }
@test "fuzz: CONNECT targets, URIs, host patterns (fuzz_net)" { fuzz_one net; }
@test "fuzz: Basic-auth, placeholder codecs, redaction (fuzz_secrets)" { fuzz_one secrets; }
@test "fuzz: profile parser (fuzz_profile)" { fuzz_one profile; }
@test "fuzz: first bytes of a jail connection, up to the ClientHello (fuzz_preamble)" { fuzz_one preamble; }

@test "fuzz: every harness has a committed seed corpus" {
	local c n missing=()
	for c in "$REPO"/fuzz/fuzz_*.c; do
		n="${c##*/fuzz_}"
		n="${n%.c}"
		ls "$REPO/fuzz/corpus/$n"/* >/dev/null 2>&1 || missing+=("$n")
	done
	[ ${#missing[@]} -eq 0 ] || fail "no seeds in fuzz/corpus/: ${missing[*]}"
}
