#!/usr/bin/env bats
# The recipes of docs/recipes.md, run as written: each test extracts the code block that
# follows a <!-- recipe:NAME --> marker in the document, so the tested text is the text a
# reader copies.  Network: only the jail's proxy on 127.0.0.1; denied hosts are never
# resolved or dialled.

load helpers

RECIPES="$REPO/docs/recipes.md"

# The fenced code block after <!-- recipe:$1 -->.
recipe() {
	awk -v m="<!-- recipe:$1 -->" '
		$0 == m { found = 1; next }
		found && !inblock && /^```/ { inblock = 1; next }
		inblock && /^```/ { exit }
		inblock { print }
	' "$RECIPES"
}

setup() {
	fake_home
	BIN="$BATS_TEST_TMPDIR/bin"
	mkdir -p "$BIN"
	ln -sf "$AJ" "$BIN/agentjail"
	PATH="$BIN:$PATH"
	export PATH
	export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.test GIT_COMMITTER_NAME=t \
		GIT_COMMITTER_EMAIL=t@example.test GIT_CONFIG_NOSYSTEM=1
}

# A git repository with a Makefile whose `test` target passes when the file `ok` exists.
make_repo() {
	setup_workspace
	git init -q -b main .
	printf 'test:\n\t@test -f ok || { echo "checks failed" >&2; exit 1; }\n' >Makefile
	git add Makefile
	git commit -q --no-verify -m init
}

commits() {
	git rev-list --count HEAD
}

@test "recipe: the git pre-commit hook blocks a failing check and lets a passing one through" {
	skip_unless_cmd git make
	make_repo
	recipe pre-commit-hook >.git/hooks/pre-commit
	grep -q 'exec agentjail' .git/hooks/pre-commit
	chmod +x .git/hooks/pre-commit

	echo a >a.txt
	git add a.txt
	run git commit -q -m "should be blocked"
	assert_failure
	assert_output --partial "checks failed"
	assert_equal "$(commits)" 1

	touch ok
	run git commit -q -m "should pass"
	assert_success
	assert_equal "$(commits)" 2
}

@test "recipe: the hook's checks run jailed (no \$HOME secrets, hooks read-only)" {
	skip_unless_cmd git make
	make_repo
	recipe pre-commit-hook >.git/hooks/pre-commit
	chmod +x .git/hooks/pre-commit
	# A "check" that tries to read the planted key and to rewrite the hook.
	printf 'test:\n\t@cat %s/.ssh/id_rsa; echo "# planted" >> .git/hooks/pre-commit; test -f ok\n' \
		"$HOME" >Makefile
	touch ok
	git add Makefile ok
	run git commit -q -m "sneaky check"
	# The check itself passes (test -f ok); what it tried on the way did not work.
	assert_success
	refute_output --partial AJ-PLANTED-SSH-KEY
	assert_output --partial "No such file"
	assert_output --partial "Read-only file system"
	run grep -c planted .git/hooks/pre-commit
	assert_output 0
}

@test "recipe: the hook refuses to run the checks unjailed when agentjail is missing" {
	skip_unless_cmd git
	make_repo
	recipe pre-commit-hook >.git/hooks/pre-commit
	chmod +x .git/hooks/pre-commit
	touch ok
	git add ok
	run env PATH=/usr/bin:/bin git commit -q -m "no agentjail"
	assert_failure
	assert_output --partial "agentjail is not installed"
}

@test "recipe: the pre-commit framework runs the check jailed and blocks the commit" {
	skip_unless_cmd git make pre-commit
	make_repo
	recipe pre-commit-config >.pre-commit-config.yaml
	grep -q 'entry: agentjail' .pre-commit-config.yaml
	git add .pre-commit-config.yaml
	git commit -q --no-verify -m "pre-commit config"

	run pre-commit run --all-files
	assert_failure
	assert_output --partial "checks failed"

	touch ok
	git add ok
	run pre-commit run --all-files
	assert_success
	assert_output --regexp 'project checks \(jailed\)\.+Passed'

	run pre-commit install
	assert_success
	git rm -q --cached ok
	rm ok
	echo b >b.txt
	git add b.txt
	run git commit -q -m "blocked by pre-commit"
	assert_failure
	assert_equal "$(commits)" 2
}

@test "recipe: the harness reports verdicts from agentjail's exit status and the audit log" {
	skip_unless_cmd python3 curl
	setup_workspace
	recipe harness >"$BATS_TEST_TMPDIR/run_jailed.py"
	local h="$BATS_TEST_TMPDIR/run_jailed.py"
	python3 -m py_compile "$h"

	run python3 "$h" "$WS" 'echo hello'
	assert_success
	assert_output --partial '"verdict": "passed"'
	assert_output --partial '"stdout": "hello\n"'

	run python3 "$h" "$WS" 'exit 3'
	assert_failure
	assert_output --partial '"verdict": "failed"'
	assert_output --partial '"status": 3'

	run python3 "$h" "$WS" 'no-such-command-here'
	assert_output --partial '"verdict": "not-runnable"'
	assert_output --partial '"status": 127'

	run python3 "$h" "$WS" 'kill -TERM $$'
	assert_output --partial '"verdict": "killed-by-signal-15"'

	run python3 "$h" "$WS" 'true' no-such-profile
	assert_output --partial '"verdict": "jail-error"'
	assert_output --partial '"status": 125'

	# A denied host: the proxy refuses it (never resolving it) and the reason comes back.
	run python3 "$h" "$WS" 'curl -sS --max-time 20 https://exfil.example/' python
	assert_failure
	assert_output --partial '"verdict": "failed"'
	assert_output --partial 'CONNECT exfil.example:443 denied'
	assert_output --partial '--allow exfil.example'
}

@test "recipes: the YAML examples parse" {
	python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"
	local name
	for name in pre-commit-config github-actions; do
		recipe "$name" >"$BATS_TEST_TMPDIR/$name.yaml"
		[ -s "$BATS_TEST_TMPDIR/$name.yaml" ] || fail "no recipe $name"
		run python3 -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); assert isinstance(d, dict), d' \
			"$BATS_TEST_TMPDIR/$name.yaml"
		assert_success
	done
}
