#!/usr/bin/env bats
# make install / uninstall / deb, the man pages, the completions, --help and --version.
#
# The install tests work on a copy of the files they need (the tree may not be writable by
# the test user), with the binary under test ($AJ) as its ./agentjail.  The dpkg -i test
# needs root and changes the system (it installs and then purges the package): it runs
# only as root, and only when no agentjail package is installed already.

load helpers

setup() {
	VERSION="$(sed -n 's/^VERSION *:= *//p' "$REPO/Makefile")"
	export VERSION
}

# A copy of what make install and make deb read, in $SRC.
stage_tree() {
	SRC="$BATS_TEST_TMPDIR/src"
	mkdir -p "$SRC"
	(cd "$REPO" && tar -cf - Makefile mk agentjail.1 agentjail-profile.5 completions apparmor \
		packaging $(ls README.md docs/*.md 2>/dev/null)) | tar -C "$SRC" -xf -
	cp "$AJ" "$SRC/agentjail"
	chmod 755 "$SRC/agentjail"
	export SRC
}

# make in the copy; -o agentjail: never try to rebuild the binary under test.
smake() {
	make --no-print-directory -C "$SRC" -o agentjail "$@"
}

# A directory holding `agentjail` (the binary under test), for PATH.
aj_bindir() {
	local d="$BATS_TEST_TMPDIR/bin"
	mkdir -p "$d"
	ln -sf "$AJ" "$d/agentjail"
	echo "$d"
}

@test "make install puts every file under DESTDIR, and the AppArmor profile names the binary" {
	stage_tree
	local D="$BATS_TEST_TMPDIR/dest"
	run smake install DESTDIR="$D" APPARMOR=yes
	assert_success
	for f in usr/local/bin/agentjail usr/local/share/man/man1/agentjail.1 \
		usr/local/share/man/man5/agentjail-profile.5 \
		usr/local/share/bash-completion/completions/agentjail \
		usr/local/share/zsh/site-functions/_agentjail etc/apparmor.d/agentjail; do
		[ -f "$D/$f" ] || fail "missing $f"
	done
	[ "$(stat -c %a "$D/usr/local/bin/agentjail")" = 755 ]
	[ "$(stat -c %a "$D/usr/local/share/man/man1/agentjail.1")" = 644 ]
	[ "$(stat -c %a "$D/etc/apparmor.d/agentjail")" = 644 ]
	cmp "$SRC/agentjail.1" "$D/usr/local/share/man/man1/agentjail.1"
	cmp "$SRC/completions/agentjail.bash" "$D/usr/local/share/bash-completion/completions/agentjail"
	run grep -E '^profile agentjail /usr/local/bin/agentjail flags=\(unconfined\) \{' \
		"$D/etc/apparmor.d/agentjail"
	assert_success
	run grep -E '^[[:space:]]*userns,' "$D/etc/apparmor.d/agentjail"
	assert_success
	run grep -c '@BINDIR@' "$D/etc/apparmor.d/agentjail"
	assert_output 0
	# Exactly these six files, nothing else.
	run sh -c "cd '$D' && find . -type f | wc -l"
	assert_output 6
	run "$D/usr/local/bin/agentjail" --version
	assert_success
	assert_line --index 0 "agentjail $VERSION"
}

@test "make install honours PREFIX, BINDIR, MANDIR and APPARMOR=no" {
	stage_tree
	local D="$BATS_TEST_TMPDIR/dest"
	run smake install DESTDIR="$D" PREFIX=/opt/aj MANDIR=/opt/aj/man APPARMOR=no
	assert_success
	[ -x "$D/opt/aj/bin/agentjail" ]
	[ -f "$D/opt/aj/man/man1/agentjail.1" ]
	[ -f "$D/opt/aj/man/man5/agentjail-profile.5" ]
	[ -f "$D/opt/aj/share/bash-completion/completions/agentjail" ]
	[ -f "$D/opt/aj/share/zsh/site-functions/_agentjail" ]
	[ ! -e "$D/etc/apparmor.d/agentjail" ]
	run smake install DESTDIR="$BATS_TEST_TMPDIR/d2" BINDIR=/usr/bin APPARMOR=yes
	assert_success
	run grep -c '^profile agentjail /usr/bin/agentjail ' "$BATS_TEST_TMPDIR/d2/etc/apparmor.d/agentjail"
	assert_output 1
}

@test "APPARMOR=auto installs the profile exactly when /etc/apparmor.d exists" {
	stage_tree
	local D="$BATS_TEST_TMPDIR/dest"
	run smake install DESTDIR="$D"
	assert_success
	if [ -d /etc/apparmor.d ]; then
		[ -f "$D/etc/apparmor.d/agentjail" ]
	else
		[ ! -e "$D/etc/apparmor.d/agentjail" ]
	fi
}

@test "make uninstall removes every file make install wrote" {
	stage_tree
	local D="$BATS_TEST_TMPDIR/dest"
	run smake install DESTDIR="$D" APPARMOR=yes
	assert_success
	run smake uninstall DESTDIR="$D"
	assert_success
	run find "$D" -type f
	assert_success
	assert_output ""
	# Uninstalling twice is not an error.
	run smake uninstall DESTDIR="$D"
	assert_success
}

@test "make deb builds a package with the binary, man pages, completions, AppArmor profile" {
	skip_unless_cmd dpkg-deb dpkg
	stage_tree
	run smake deb
	assert_success
	local arch deb
	arch="$(dpkg --print-architecture)"
	deb="$SRC/agentjail_${VERSION}_${arch}.deb"
	[ -f "$deb" ] || fail "no $deb"

	run dpkg-deb -f "$deb" Package Version Architecture
	assert_success
	assert_line "Package: agentjail"
	assert_line "Version: $VERSION"
	assert_line "Architecture: $arch"
	run dpkg-deb -f "$deb" Depends
	assert_success
	# libssl3 is loaded with dlopen, so shlibdeps would not find it: it must be named.
	# libseccomp only compiles the filters at build time.
	for lib in libc6 libcap2 libssl3 libinih1; do
		assert_output --partial "$lib"
	done
	refute_output --partial libseccomp
	run dpkg-deb -I "$deb"
	assert_success
	for f in control md5sums conffiles postinst prerm postrm; do
		assert_output --partial " $f"
	done

	run dpkg-deb -c "$deb"
	assert_success
	for f in ./usr/bin/agentjail ./usr/share/man/man1/agentjail.1.gz \
		./usr/share/man/man5/agentjail-profile.5.gz \
		./usr/share/bash-completion/completions/agentjail \
		./usr/share/zsh/vendor-completions/_agentjail ./etc/apparmor.d/agentjail \
		./usr/share/doc/agentjail/copyright ./usr/share/doc/agentjail/changelog.gz; do
		assert_output --regexp " $f(\$|
)"
	done
	# Owned by root whoever built it; nothing under /usr/local.
	refute_output --regexp '^[^ ]+ [^r][^ ]*/'
	refute_output --partial './usr/local'

	# The packaged AppArmor profile names /usr/bin/agentjail; the scripts are valid sh.
	local x="$BATS_TEST_TMPDIR/x"
	dpkg-deb -x "$deb" "$x"
	dpkg-deb -e "$deb" "$x/DEBIAN"
	run grep -c '^profile agentjail /usr/bin/agentjail ' "$x/etc/apparmor.d/agentjail"
	assert_output 1
	for s in postinst prerm postrm; do
		sh -n "$x/DEBIAN/$s"
		[ -x "$x/DEBIAN/$s" ]
	done
	run "$x/usr/bin/agentjail" --version
	assert_success
	assert_line --index 0 "agentjail $VERSION"
	# The packaged man page is the tree's.
	run sh -c "gzip -dc '$x/usr/share/man/man1/agentjail.1.gz' | cmp - '$SRC/agentjail.1'"
	assert_success
}

@test "root: dpkg -i installs the package, agentjail works, dpkg -r and -P remove it" {
	skip_unless_root
	skip_unless_cmd dpkg-deb dpkg
	if dpkg-query -W -f '${Status}' agentjail 2>/dev/null | grep -q installed; then
		skip "an agentjail package is installed already: not touching it"
	fi
	[ ! -e /usr/bin/agentjail ] || skip "/usr/bin/agentjail exists and is not from a package"
	stage_tree
	run smake deb
	assert_success
	local deb
	deb="$(ls "$SRC"/agentjail_"$VERSION"_*.deb)"

	run dpkg -i "$deb"
	assert_success
	# From here on, leave the system as it was whatever happens.
	trap 'dpkg -P agentjail >/dev/null 2>&1 || true' EXIT
	run /usr/bin/agentjail --version
	assert_success
	assert_line --index 0 "agentjail $VERSION"
	run /usr/bin/agentjail check
	assert_success
	assert_output --partial "can build a jail"
	setup_workspace
	run /usr/bin/agentjail -- sh -c 'test ! -e /root/.bash_history && exit 7'
	assert_equal "$status" 7
	run man -w agentjail
	assert_output /usr/share/man/man1/agentjail.1.gz
	[ -f /usr/share/bash-completion/completions/agentjail ]

	run dpkg -r agentjail
	assert_success
	[ ! -e /usr/bin/agentjail ]
	[ ! -e /usr/share/man/man1/agentjail.1.gz ]
	run dpkg -P agentjail
	assert_success
	[ ! -e /etc/apparmor.d/agentjail ]
	trap - EXIT
}

@test "the man pages render without groff warnings" {
	skip_unless_cmd groff
	local page
	for page in agentjail.1 agentjail-profile.5; do
		run --separate-stderr groff -man -Tutf8 -ww -z "$REPO/$page"
		assert_success
		[ -z "$stderr" ] || fail "$page: $stderr"
	done
	skip_unless_cmd man
	run --separate-stderr env MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings=w -l "$REPO/agentjail.1"
	assert_success
	[ -z "$stderr" ] || fail "man -l: $stderr"
	for s in NAME SYNOPSIS DESCRIPTION OPTIONS COMMANDS PROFILES ENVIRONMENT "AUDIT LOG" \
		"EXIT STATUS" FILES EXAMPLES "SEE ALSO"; do
		assert_line "$s"
	done
	run --separate-stderr env MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings=w -l "$REPO/agentjail-profile.5"
	assert_success
	[ -z "$stderr" ] || fail "man -l: $stderr"
}

@test "agentjail.1 documents every long option, the exit codes and the jail's environment" {
	local opts o
	# The long options the CLI defines: { "name", ... } in long_opts[].
	opts="$(sed -n '/long_opts\[\] = {/,/^};/s/^[[:space:]]*{ "\([a-z-]*\)".*/\1/p' \
		"$REPO/agentjail.c")"
	[ -n "$opts" ] || fail "no long options found in agentjail.c"
	for o in $opts; do
		o="${o//-/\\\\-}"
		grep -q -- "\\\\-\\\\-$o" "$REPO/agentjail.1" || fail "agentjail.1 does not mention --${o//\\\\/}"
	done
	for code in 125 126 127 128+; do
		grep -q "^\.B\?I\? *$code" "$REPO/agentjail.1" ||
			grep -q "$code" "$REPO/agentjail.1" || fail "exit status $code not documented"
	done
	for v in HTTP_PROXY HTTPS_PROXY NO_PROXY SSL_CERT_FILE NODE_EXTRA_CA_CERTS REQUESTS_CA_BUNDLE \
		TMPDIR; do
		grep -q "$v" "$REPO/agentjail.1" || fail "$v not documented"
	done
	# The audit log fields the proxy writes (audit.c).
	for k in time conn method host port addr path decision status rule reason secret \
		bytes_up bytes_down ms; do
		grep -q "\"$k\"" "$REPO/audit.c" || continue
		grep -q "^\.B.* $k\b\|^\.B $k$\|^\.BR $k " "$REPO/agentjail.1" ||
			fail "audit field $k not documented"
	done
	# The version the page states is the Makefile's.
	grep -q "^\.TH AGENTJAIL 1 .*\"agentjail $VERSION\"" "$REPO/agentjail.1" ||
		fail "agentjail.1 .TH does not say agentjail $VERSION"
}

@test "--help fits an 80x24 screen and names every long option; --version names the libraries" {
	aj_sep --help
	assert_success
	local nlines width o opts
	nlines="$(printf '%s\n' "$output" | wc -l)"
	width="$(printf '%s\n' "$output" | awk '{ if (length($0) > m) m = length($0) } END { print m }')"
	[ "$nlines" -le 24 ] || fail "--help is $nlines lines"
	[ "$width" -le 80 ] || fail "--help is $width columns wide"
	assert_line --index 0 --regexp '^Usage: agentjail '
	opts="$(sed -n '/long_opts\[\] = {/,/^};/s/^[[:space:]]*{ "\([a-z-]*\)".*/\1/p' \
		"$REPO/agentjail.c")"
	for o in $opts; do
		assert_output --partial -- "--$o"
	done
	aj_sep --version
	assert_success
	assert_line --index 0 --regexp '^agentjail [0-9]+\.[0-9]+'
	assert_output --partial OpenSSL
	assert_output --partial libseccomp
}

# Completion candidates for the words given (the last one is completed; '' for a new word).
bash_complete() {
	run bash -c '
		source "$1"/completions/agentjail.bash || exit 1
		shift
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"
		COMP_POINT=${#COMP_LINE}
		_agentjail "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}" 2>/dev/null
		printf "%s\n" "${COMPREPLY[@]}"' _ "$REPO" "$@"
}

@test "bash completion loads and offers flags, subcommands and profile names" {
	run bash -c "source '$REPO/completions/agentjail.bash' && complete -p agentjail"
	assert_success
	assert_output "complete -F _agentjail agentjail"

	PATH="$(aj_bindir):$PATH"
	setup_workspace
	bash_complete agentjail --pro
	assert_output -- "--profile"
	bash_complete agentjail --
	for o in --workspace --profile --ro --rw --hide --overlay --env --net --allow --deny \
		--add-host --secret --upstream-ca --log --trust-workspace --quiet --help --version; do
		assert_line -- "$o"
	done
	bash_complete agentjail ''
	assert_line check
	assert_line profiles
	assert_line explain
	bash_complete agentjail --net ''
	assert_output "none
proxy"
	# Profile names: exactly what `agentjail profiles` lists.
	local p names
	names="$("$AJ" profiles | awk 'NR == 1 && $1 == "NAME" { next } NF { print $1 }')"
	[ -n "$names" ]
	bash_complete agentjail --profile ''
	for p in $names; do
		assert_line "$p"
	done
	bash_complete agentjail explain --profile=no
	assert_output node
	# After the command, agentjail's options are not offered.
	bash_complete agentjail -- ls --pro
	refute_output --partial -- --profile
	# Nothing after check.
	bash_complete agentjail check ''
	assert_output ""
}

@test "zsh completion offers profile names with their descriptions" {
	skip_unless_cmd zsh
	PATH="$(aj_bindir):$PATH"
	setup_workspace
	local fdir="$BATS_TEST_TMPDIR/zfunc"
	mkdir -p "$fdir"
	cp "$REPO/completions/_agentjail" "$fdir/"
	zsh -n "$fdir/_agentjail"
	# Drive an interactive zsh through zpty: type the line and TAB, read the listing.
	cat >"$BATS_TEST_TMPDIR/z.zsh" <<'EOF'
zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z "PS1='%% '; fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -D; LISTMAX=1000; unsetopt beep"
zpty -w z 'print ZREADY'
acc=; for i in {1..100}; do zpty -r -t z c && acc+=$c; [[ $acc == *ZREADY*ZREADY* ]] && break; sleep 0.1; done
zpty -n -w z "$2"$'\t'
acc=; for i in {1..30}; do zpty -r -t z c && acc+=$c; sleep 0.1; done
print -r -- "$acc" | tr -d '\r'
zpty -d z
EOF
	run timeout 60 zsh -f "$BATS_TEST_TMPDIR/z.zsh" "$fdir" 'agentjail --profile '
	assert_success
	assert_output --regexp 'node +-- Node\.js'
	assert_output --regexp 'agent +-- '
	run timeout 60 zsh -f "$BATS_TEST_TMPDIR/z.zsh" "$fdir" 'agentjail --net '
	assert_output --regexp 'proxy +-- '
}

@test "shell scripts shipped pass shellcheck" {
	skip_unless_cmd shellcheck
	run shellcheck -s sh "$REPO"/packaging/postinst "$REPO"/packaging/prerm "$REPO"/packaging/postrm
	assert_success
	run shellcheck -s bash -e SC2088 "$REPO/completions/agentjail.bash"
	assert_success
}
