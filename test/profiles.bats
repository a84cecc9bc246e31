#!/usr/bin/env bats
# The built-in profiles (issue 3) running their real tools in the jail, with this machine's
# toolchains (the real $HOME: nvm, pyenv, rustup live there). A tool that is not installed
# is skipped with the reason. Nothing here reaches beyond 127.0.0.1: every command works
# offline (the proxy runs, but nothing asks it to dial out).

load helpers

setup() {
	setup_workspace
	export XDG_CONFIG_HOME="$BATS_TEST_TMPDIR/xdg"
	export AGENTJAIL_SYSCONFDIR="$BATS_TEST_TMPDIR/etc-agentjail"
	mkdir -p "$XDG_CONFIG_HOME" "$AGENTJAIL_SYSCONFDIR"
}

# in_jail PROFILE CMD...: run CMD in the jail with that profile, stderr apart
in_jail() {
	local p="$1"
	shift
	aj_sep -q --profile "$p" -- "$@"
}

@test "default: runs offline, no proxy variables, the host's home is not there" {
	in_jail default sh -c 'echo hello; echo "proxy=${HTTPS_PROXY:-none}"; ls -A "$HOME" | wc -l'
	assert_success
	assert_line --index 0 hello
	assert_line --index 1 'proxy=none'
	assert_line --index 2 0
}

@test "node: node and npm run" {
	skip_unless_cmd node npm
	in_jail node node -e 'console.log("node", process.version, 6 * 7)'
	assert_success
	assert_output --regexp '^node v[0-9]+\.[0-9]+\.[0-9]+ 42$'
	in_jail node npm --version
	assert_success
	assert_output --regexp '^[0-9]+\.[0-9]+\.[0-9]+$'
	in_jail node sh -c 'echo "$HTTPS_PROXY $npm_config_https_proxy $npm_config_update_notifier"'
	assert_success
	assert_output 'http://127.0.0.1:3128 http://127.0.0.1:3128 false'
}

@test "node: npm init and npm test in the workspace" {
	skip_unless_cmd node npm
	cat >package.json <<-'EOF'
	{ "name": "aj-demo", "version": "1.0.0", "scripts": { "test": "node -e \"console.log('tests pass')\"" } }
	EOF
	in_jail node npm test
	assert_success
	assert_output --partial 'tests pass'
}

@test "node: the npm cache is an overlay, writes do not reach the host" {
	skip_unless_cmd node npm
	# a home of the test's own, with a cache the jail should see but not change
	fake_home
	mkdir -p "$HOME/.npm"
	echo cached >"$HOME/.npm/entry"
	local marker="aj-overlay-$RANDOM$RANDOM"
	in_jail node sh -c "cat ~/.npm/entry && touch ~/.npm/$marker && echo changed >~/.npm/entry && ls ~/.npm/$marker"
	assert_success
	assert_line --index 0 cached
	[ ! -e "$HOME/.npm/$marker" ] || fail "a new file reached the host's cache"
	[ "$(cat "$HOME/.npm/entry")" = cached ] || fail "a change reached the host's cache"
}

@test "python: python3 -m venv, then the venv's python and pip" {
	skip_unless_cmd python3
	in_jail python python3 -m venv .venv
	assert_success
	[ -x .venv/bin/python ]
	in_jail python .venv/bin/python -c 'import sys; print(sys.prefix)'
	assert_success
	assert_output "$WS/.venv"
	in_jail python .venv/bin/python -m pip --version
	assert_success
	assert_output --partial "$WS/.venv"
}

@test "git: init, commit, log, with the host's gitconfig read-only" {
	skip_unless_cmd git
	in_jail git sh -c 'git init -q repo && cd repo && echo hi >f && git add f &&
		git -c user.name=aj -c user.email=aj@example.test commit -q -m first &&
		git log --format=%s && git config --global user.name zz 2>/dev/null; echo "global:$?"'
	assert_success
	assert_line --index 0 first
	# ~/.gitconfig is bound read-only when it exists, so --global cannot write it
	if [ -f "$HOME/.gitconfig" ]; then
		refute_line 'global:0'
	fi
	[ -f repo/.git/HEAD ]
}

@test "rust: cargo and rustc run; a crate builds offline" {
	skip_unless_cmd cargo rustc
	in_jail rust cargo --version
	assert_success
	assert_output --regexp '^cargo [0-9]+\.'
	in_jail rust sh -c 'cargo new -q --vcs none hello && cd hello && cargo build -q --offline &&
		./target/debug/hello'
	assert_success
	assert_output 'Hello, world!'
}

@test "go: go runs; a module builds offline" {
	skip_unless_cmd go
	in_jail go go version
	assert_success
	assert_output --regexp '^go version go[0-9]'
	printf 'module example.test/hello\n\ngo 1.20\n' >go.mod
	printf 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello from go") }\n' >main.go
	in_jail go sh -c 'GOFLAGS=-mod=mod GOPROXY=off go run .'
	assert_success
	assert_output 'hello from go'
}

@test "agent: config dir rw, credential files hidden, API key only as a placeholder" {
	fake_home
	mkdir -p "$HOME/.claude" "$HOME/.codex"
	echo '{"theme":"dark"}' >"$HOME/.claude/settings.json"
	echo '{"token":"AJ-PLANTED-CLAUDE-CREDENTIAL"}' >"$HOME/.claude/.credentials.json"
	echo '{"key":"AJ-PLANTED-CODEX-CREDENTIAL"}' >"$HOME/.codex/auth.json"
	export ANTHROPIC_API_KEY="sk-ant-api03-AJREALVALUE$RANDOM$RANDOM"
	in_jail agent sh -c 'cat ~/.claude/settings.json; cat ~/.claude/.credentials.json;
		cat ~/.codex/auth.json; echo written >~/.claude/from-jail;
		ls ~/.ssh 2>&1 || true; echo "key=$ANTHROPIC_API_KEY"'
	assert_success
	assert_output --partial '{"theme":"dark"}'
	refute_output --partial AJ-PLANTED
	refute_output --partial "$ANTHROPIC_API_KEY"
	assert_line --regexp '^key=.+'
	[ "$(cat "$HOME/.claude/from-jail")" = written ]
	[[ "$output" != *id_rsa* ]]
}

@test "agent: the agent itself runs when installed" {
	local tool=
	for t in claude codex aider; do
		command -v "$t" >/dev/null 2>&1 && { tool=$t; break; }
	done
	[ -n "$tool" ] || skip "no coding agent (claude, codex, aider) installed"
	in_jail agent "$tool" --version
	assert_success
}
