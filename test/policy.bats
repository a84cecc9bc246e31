#!/usr/bin/env bats
# Profiles (issue 3) through the CLI: `agentjail explain`, `agentjail profiles`, layering,
# tighten-only workspace profiles and their trust, and every error message. Runs in a fake
# $HOME with a private $XDG_CONFIG_HOME and /etc/agentjail (AGENTJAIL_SYSCONFDIR).
# Nothing here reaches beyond 127.0.0.1.

load helpers

setup() {
	fake_home
	setup_workspace
	export XDG_CONFIG_HOME="$HOME/.config"
	export AGENTJAIL_SYSCONFDIR="$BATS_TEST_TMPDIR/etc-agentjail"
	UD="$XDG_CONFIG_HOME/agentjail"
	mkdir -p "$UD" "$AGENTJAIL_SYSCONFDIR"
}

# user_profile NAME: the profile text on stdin becomes $UD/NAME.ini
user_profile() {
	cat >"$UD/$1.ini"
}

# refused PATTERN: the last command exited 125 and said PATTERN on stderr, nothing on stdout
refused() {
	[ "$status" -eq 125 ] || fail "exit $status, expected 125 (stderr: $stderr)"
	[[ "$stderr" == *"$1"* ]] || fail "stderr lacks '$1': $stderr"
	[[ "$stderr" == agentjail:* ]] || fail "stderr not prefixed 'agentjail:': $stderr"
	[ -z "$output" ] || fail "stdout not empty: $output"
}

# ---- explain --------------------------------------------------------------------------

@test "explain: default profile, no network, workspace rw, origins" {
	aj_sep explain
	assert_success
	assert_line --regexp '^layer +built-in default\.ini$'
	assert_line --regexp '^network +none +loopback only +default\.ini:[0-9]+$'
	assert_line --regexp "^mount +rw +$WS +workspace$"
	assert_line --regexp '^mount +ro +/usr +jail$'
	refute_line --regexp '^allow'
}

@test "explain builds nothing and runs nothing" {
	aj_sep explain --profile node -- sh -c "touch $WS/ran"
	assert_success
	assert_line --regexp "^command +sh -c touch $WS/ran$"
	[ ! -e "$WS/ran" ]
}

@test "explain: node profile lists its hosts, toolchains and caches with file:line" {
	mkdir -p "$HOME/.npm"
	aj_sep explain --profile node
	assert_success
	assert_line --regexp '^layer +built-in node\.ini$'
	assert_line --regexp '^network +proxy .* node\.ini:[0-9]+$'
	assert_line --regexp '^allow +registry\.npmjs\.org +node\.ini:[0-9]+$'
	assert_line --regexp "^mount +overlay\\? +$HOME/\\.npm +node\\.ini:[0-9]+$"
	assert_line --regexp "^mount +ro\\? +$HOME/\\.nvm \\(absent: skipped\\) +node\\.ini:[0-9]+$"
}

@test "explain: every built-in profile loads" {
	for p in default node python rust go git agent; do
		aj_sep explain --profile "$p"
		[ "$status" -eq 0 ] || fail "profile $p: exit $status: $stderr"
		assert_line "layer              built-in $p.ini"
	done
}

@test "explain: flags are tagged with the flag" {
	aj_sep explain --allow 'api.example.test:8443' --deny 'bad.example.test' --ro /opt \
		--env FOO=bar --secret TOKEN@api.example.test --add-host api.example.test=127.0.0.1
	assert_success
	assert_line --regexp '^allow +api\.example\.test:8443 +--allow$'
	assert_line --regexp '^deny +bad\.example\.test +--deny$'
	assert_line --regexp '^mount +ro +/opt +--ro$'
	assert_line --regexp '^env +set +FOO=bar +--env$'
	assert_line --regexp '^secret +TOKEN -> api\.example\.test source=env:TOKEN +--secret$'
	assert_line --regexp '^add-host +api\.example\.test=127\.0\.0\.1 +--add-host$'
}

@test "explain never prints a secret's value" {
	export TOKEN=aj-the-real-secret-value-0123456789
	export ANTHROPIC_API_KEY=sk-ant-aj-real-value-9876543210
	aj_sep explain --profile agent --secret TOKEN@api.example.test
	assert_success
	assert_line --partial 'secret             ANTHROPIC_API_KEY -> api.anthropic.com'
	assert_line --partial 'secret             TOKEN -> api.example.test'
	refute_output --partial 'real-secret-value'
	refute_output --partial 'aj-real-value'
	[[ "$stderr" != *real* ]]
}

@test "explain: agent profile hides credential files and drops absent optional keys" {
	unset ANTHROPIC_API_KEY OPENAI_API_KEY OPENROUTER_API_KEY
	mkdir -p "$HOME/.claude"
	echo '{}' >"$HOME/.claude/.credentials.json"
	aj_sep explain --profile agent
	assert_success
	assert_line --regexp "^mount +rw\\? +$HOME/\\.claude +agent\\.ini:[0-9]+$"
	assert_line --regexp "^mount +hide\\? +$HOME/\\.claude/\\.credentials\\.json +agent\\.ini:[0-9]+$"
	assert_line --regexp '^allow +api\.anthropic\.com +agent\.ini:[0-9]+$'
	refute_line --partial 'secret '
	OPENAI_API_KEY=sk-x aj_sep explain --profile agent
	assert_line --partial 'secret             OPENAI_API_KEY -> api.openai.com source=env:OPENAI_API_KEY'
}

# ---- profiles ---------------------------------------------------------------------------

@test "profiles: built-ins, user and system profiles, with sources and descriptions" {
	printf '[profile]\ndescription = my own node\ninherit = node\n' | user_profile node
	printf '[profile]\ndescription = a team profile\n' >"$AGENTJAIL_SYSCONFDIR/team.ini"
	aj_sep profiles
	assert_success
	assert_line --index 0 --regexp '^NAME +SOURCE +DESCRIPTION$'
	for p in default node python rust go git agent; do
		assert_line --regexp "^$p +built-in"
	done
	assert_line --regexp "^node +$UD/node\\.ini +my own node$"
	assert_line --regexp '^node +built-in \(overridden\) +Node\.js'
	assert_line --regexp "^team +$AGENTJAIL_SYSCONFDIR/team\\.ini +a team profile$"
	refute_line --regexp '^config '
}

# ---- layering ---------------------------------------------------------------------------

@test "layering: a user profile inherits built-ins, a user node.ini builds on the built-in" {
	user_profile node <<-'EOF'
	[profile]
	description = node plus an internal registry
	inherit = node, git
	[network]
	allow = npm.internal.example
	EOF
	aj_sep explain --profile node
	assert_success
	assert_line --index 2 'layer              built-in default.ini'
	assert_line --index 3 'layer              built-in node.ini'
	assert_line --index 4 'layer              built-in git.ini'
	assert_line --index 5 "layer              $UD/node.ini (user)"
	assert_line --regexp "^allow +npm\\.internal\\.example +$UD/node\\.ini:5$"
	assert_line --regexp '^allow +github\.com +git\.ini:[0-9]+$'
}

@test "layering: --profile FILE, a later deny removes an allowed host" {
	cat >"$BATS_TEST_TMPDIR/p.ini" <<-'EOF'
	[profile]
	inherit = node
	[network]
	deny = registry.yarnpkg.com
	EOF
	aj_sep explain --profile "$BATS_TEST_TMPDIR/p.ini"
	assert_success
	assert_line --regexp '^allow +registry\.yarnpkg\.com +node\.ini:[0-9]+$'
	assert_line --regexp "^deny +registry\\.yarnpkg\\.com +$BATS_TEST_TMPDIR/p\\.ini:4$"
}

@test "a denied host is refused by the proxy at run time" {
	skip_unless_cmd curl
	printf '[network]\ndeny = registry.npmjs.org\n' >.agentjail.ini
	# The proxy refuses before it resolves or dials anything; --add-host keeps even a
	# regression on loopback: no traffic can leave the machine.
	aj_sep -q --profile node --add-host registry.npmjs.org=127.0.0.1 -- curl -sS -o /dev/null -w '%{http_code}' --max-time 20 \
		https://registry.npmjs.org/
	[ "$status" -ne 0 ] || fail "curl reached a denied host"
	[[ "$stderr" == *403* ]] || [[ "$output" == *403* ]] || fail "no 403: $output $stderr"
}

# ---- the workspace profile: tighten-only ------------------------------------------------

@test "workspace: tightening lines apply, tagged with .agentjail.ini:LINE" {
	mkdir -p "$HOME/.claude" sub
	cat >.agentjail.ini <<-'EOF'
	[profile]
	network = none
	[network]
	deny = api.openai.com
	[filesystem]
	hide = $WORKSPACE/secrets.env
	ro = $WORKSPACE/sub
	ro = ~/.claude
	[env]
	set = CI=1
	[secret ANTHROPIC_API_KEY]
	drop = yes
	EOF
	ANTHROPIC_API_KEY=sk-x aj_sep explain --profile agent
	assert_success
	assert_line "layer              $WS/.agentjail.ini (workspace, untrusted: tighten-only)"
	assert_line --regexp "^network +none +loopback only +$WS/\\.agentjail\\.ini:2$"
	assert_line --regexp "^deny +api\\.openai\\.com +$WS/\\.agentjail\\.ini:4$"
	assert_line --regexp "^mount +hide +$WS/secrets\\.env +$WS/\\.agentjail\\.ini:6$"
	assert_line --regexp "^mount +ro +$HOME/\\.claude +$WS/\\.agentjail\\.ini:8$"
	refute_line --partial 'secret             ANTHROPIC_API_KEY'
}

@test "workspace: every widening line is refused with FILE:LINE and why" {
	local -a lines=(
		'[network]|allow = evil.example|it allows a host'
		'[filesystem]|rw = /var|it makes a path writable'
		'[filesystem]|ro = ~/.ssh|it makes a path visible that the jail does not show'
		'[filesystem]|overlay = /srv|it makes a path visible'
		'[profile]|network = proxy|it turns the network on'
		'[profile]|inherit = node|it pulls in another profile'
		'[env]|pass = AWS_SECRET_ACCESS_KEY|it passes a host variable into the jail'
		'[secret STEAL]|hosts = evil.example|it adds or changes a secret'
		'[secret STEAL]|source = file:~/.ssh/id_rsa|it adds or changes a secret'
	)
	local l sec line why
	for l in "${lines[@]}"; do
		IFS='|' read -r sec line why <<<"$l"
		printf '# from the repository\n%s\n%s\n' "$sec" "$line" >.agentjail.ini
		aj_sep explain
		refused "$WS/.agentjail.ini:3: '$line' would widen the jail: $why"
		[[ "$stderr" == *"--trust-workspace"* ]] || fail "no hint: $stderr"
	done
}

@test "workspace: a hidden path cannot be shown again" {
	mkdir -p "$HOME/.claude"
	echo '{}' >"$HOME/.claude/.credentials.json"
	printf '[filesystem]\nro = ~/.claude/.credentials.json\n' >.agentjail.ini
	aj_sep explain --profile agent
	refused "$WS/.agentjail.ini:2: 'ro = ~/.claude/.credentials.json' would widen the jail: it makes a hidden path visible"
}

@test "workspace: ro through a planted symbolic link is refused" {
	ln -s "$(realpath --relative-to="$WS" "$HOME/.ssh")" escape
	printf '[filesystem]\nro = $WORKSPACE/escape\n' >.agentjail.ini
	aj_sep -q -- cat escape/id_rsa
	refused "$WS/.agentjail.ini:2: 'ro = \$WORKSPACE/escape' would widen the jail: it goes through a symbolic link"
}

@test "workspace: a refused profile runs nothing" {
	printf '[network]\nallow = evil.example\n' >.agentjail.ini
	aj_sep -- sh -c "touch $WS/ran"
	refused "$WS/.agentjail.ini:2:"
	[ ! -e "$WS/ran" ]
}

@test "workspace: --trust-workspace lets it widen" {
	printf '[network]\nallow = extra.example\n' >.agentjail.ini
	aj_sep explain --trust-workspace
	assert_success
	assert_line "layer              $WS/.agentjail.ini (workspace, trusted by --trust-workspace)"
	assert_line --regexp "^allow +extra\\.example +$WS/\\.agentjail\\.ini:2$"
}

@test "workspace: trust = DIR in config.ini lets it widen; other dirs stay untrusted" {
	printf '[network]\nallow = extra.example\n' >.agentjail.ini
	printf '[config]\ntrust = /nowhere\n' >"$UD/config.ini"
	aj_sep explain
	refused "would widen the jail"
	printf '[config]\ntrust = /nowhere\ntrust = %s\n' "$WS" >"$UD/config.ini"
	aj_sep explain
	assert_success
	assert_line "layer              $WS/.agentjail.ini (workspace, trusted by $UD/config.ini:3)"
	assert_line --regexp '^allow +extra\.example'
}

@test "workspace: a hide is enforced in the jail" {
	echo 'AJ-WORKSPACE-SECRET' >secrets.env
	echo visible >other.txt
	printf '[filesystem]\nhide = $WORKSPACE/secrets.env\n' >.agentjail.ini
	aj_sep -q -- sh -c 'cat secrets.env; cat other.txt'
	assert_success
	refute_output --partial AJ-WORKSPACE-SECRET
	assert_output --partial visible
}

@test "workspace: a symlinked .agentjail.ini is refused" {
	printf '[network]\nallow = x.example\n' >"$BATS_TEST_TMPDIR/elsewhere.ini"
	ln -s "$BATS_TEST_TMPDIR/elsewhere.ini" .agentjail.ini
	aj_sep explain
	refused "$WS/.agentjail.ini: is a symbolic link"
}

# ---- bad input: exit 125, agentjail: FILE:LINE: what is wrong ----------------------------

@test "errors: unknown --profile lists the profiles that exist" {
	printf '[profile]\ndescription = mine\n' | user_profile mine
	aj_sep explain --profile nosuch
	refused "unknown profile 'nosuch'; available: agent, default, git, go, mine, node, python, rust"
	aj_sep --profile nosuch -- true
	refused "unknown profile 'nosuch'"
}

@test "errors: each bad line is refused with FILE:LINE" {
	local -a cases=(
		$'[profile]\n[bogus]|2: unknown section [bogus]'
		$'[profile]\ncolour = red|2: unknown key \'colour\' in [profile]'
		$'network = none|1: \'network\' outside any section'
		$'[network]\nallow = bad..host|2: allow bad..host: malformed host name'
		$'[network]\nallow = *.|2: allow *.: malformed host pattern'
		$'[network]\ndeny = a*b.example|2: deny a*b.example: \'*\' is allowed only as a whole first label'
		$'[network]\nallow = example.com:99999|2: allow example.com:99999: bad port'
		$'[network]\nallow = 10.0.0.0/40|2: allow 10.0.0.0/40: bad address prefix length'
		$'[filesystem]\nro = relative/dir|2: ro = relative/dir: relative path'
		$'[filesystem]\nrw = ~/a/../b|2: rw = ~/a/../b: \'.\' and \'..\' are not allowed'
		$'[profile]\nnetwork = sometimes|2: network must be none or proxy'
		$'[profile]\njust some words|2: syntax error'
		$'[network]\nallow = a.example\n  b.example|3: indented line'
		$'[secret TOKEN]\nsource = env:TOKEN|1: secret TOKEN is bound to no host'
		$'[secret TOKEN]\nhosts = *|2: hosts *: a secret cannot be bound to every host'
		$'[secret TOKEN]\nhosts = a.example\nsource = vault:x|3: source must be env:VARIABLE, file:PATH or cmd:COMMAND'
		$'[secret TOKEN]\nhosts = a.example\nheader = Bearer|3: header must look like'
		$'[secret]|1: [secret] needs a name'
		$'[profile]\ninherit = /no/such/base.ini|2: inherit /no/such/base.ini: No such file or directory'
		$'[profile]\ninherit = nosuch|2: inherit: no profile named \'nosuch\' (available: '
	)
	local c text want
	for c in "${cases[@]}"; do
		text="${c%%|*}"
		want="${c#*|}"
		printf '%s\n' "$text" | user_profile bad
		aj_sep explain --profile bad
		refused "agentjail: $UD/bad.ini:$want"
	done
}

@test "errors: inherit cycle" {
	printf '[profile]\ninherit = cyc-b\n' | user_profile cyc-a
	printf '[profile]\ndescription = b\ninherit = cyc-a\n' | user_profile cyc-b
	aj_sep explain --profile cyc-a
	refused "agentjail: $UD/cyc-b.ini:3: inherit cycle: $UD/cyc-a.ini -> $UD/cyc-b.ini -> $UD/cyc-a.ini"
}

@test "errors: missing --profile file" {
	aj_sep explain --profile "$BATS_TEST_TMPDIR/missing.ini"
	refused "agentjail: $BATS_TEST_TMPDIR/missing.ini: cannot read profile: No such file or directory"
}

@test "errors: a bad workspace profile is reported with its path and line" {
	printf '[filesystem]\nhide = secrets\n' >.agentjail.ini
	aj_sep -- true
	refused "agentjail: $WS/.agentjail.ini:2: hide = secrets: relative path"
}

@test "errors: a bad config.ini is reported with its path and line" {
	printf '[config]\ntrusted = /x\n' >"$UD/config.ini"
	printf '[network]\ndeny = x.example\n' >.agentjail.ini
	aj_sep explain
	refused "agentjail: $UD/config.ini:2: unknown key 'trusted' in [config]"
}
