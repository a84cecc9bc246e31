# bash completion for agentjail(1)                                  -*- shell-script -*-
#
# Installed as $(PREFIX)/share/bash-completion/completions/agentjail; works with or without
# the bash-completion package (source this file from ~/.bashrc to use it by hand).
# Profile names come from `agentjail profiles`, run when you press TAB.

# The profile names the agentjail being completed ($1) knows, one per line.
_agentjail_profile_names()
{
	local aj=$1
	local tilde='~/'
	# `~/bin/agentjail` as typed: expand the tilde so it can be run.
	[[ $aj == "$tilde"* ]] && aj=$HOME/${aj#"$tilde"}
	command -v -- "$aj" >/dev/null 2>&1 || aj=agentjail
	"$aj" profiles 2>/dev/null | awk 'NR == 1 && $1 == "NAME" { next } NF { print $1 }'
}

# COMPREPLY from the lines a command prints (sorted, without duplicates); _agentjail_add
# appends.
_agentjail_set()
{
	mapfile -t COMPREPLY < <("$@" | sort -u)
}
_agentjail_add()
{
	mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <("$@" | sort -u)
}

# Options that take an argument (the next word, or after '=').
_agentjail_opt_with_arg()
{
	case $1 in
	-C | --workspace | --profile | --ro | --rw | --hide | --overlay | --env | --net | \
		--allow | --deny | --add-host | --secret | --upstream-ca | --log)
		return 0
		;;
	esac
	return 1
}

# Complete the argument of option $1 for the word $2 (the agentjail binary is $3).
_agentjail_complete_arg()
{
	local opt=$1 cur=$2 aj=$3
	case $opt in
	--profile)
		local names
		names=$(_agentjail_profile_names "$aj")
		_agentjail_set compgen -W "$names" -- "$cur"
		# A profile can also be an .ini file (in a directory).
		compopt -o filenames 2>/dev/null
		_agentjail_add compgen -f -X '!*.ini' -- "$cur"
		_agentjail_add compgen -d -- "$cur"
		;;
	-C | --workspace)
		compopt -o filenames 2>/dev/null
		_agentjail_set compgen -d -- "$cur"
		;;
	--ro | --rw | --hide | --overlay | --upstream-ca | --log)
		compopt -o filenames 2>/dev/null
		_agentjail_set compgen -f -- "$cur"
		;;
	--net)
		_agentjail_set compgen -W 'none proxy' -- "$cur"
		;;
	--env)
		_agentjail_set compgen -e -- "$cur"
		;;
	--secret)
		# NAME@HOST: offer the exported variables, then the host is free text.
		if [[ $cur != *@* ]]; then
			compopt -o nospace 2>/dev/null
			_agentjail_set compgen -e -S @ -- "$cur"
		fi
		;;
	*)
		COMPREPLY=()
		;;
	esac
}

_agentjail()
{
	local aj=$1 cur prev i w first=1 cmd_at=0 sub=
	cur=${COMP_WORDS[COMP_CWORD]}
	COMPREPLY=()

	# Walk the words before the cursor: options and their arguments, a subcommand, '--',
	# and where the jailed command starts (cmd_at).
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if ((first)) && [[ $w == check || $w == profiles || $w == explain ]] && [[ -z $sub ]]; then
			sub=$w
			first=0
			continue
		fi
		first=0
		case $w in
		--)
			cmd_at=$((i + 1))
			break
			;;
		--*=*) ;;
		-C?*) ;; # -Cdir
		-*)
			# bash splits --opt=value at '=' (COMP_WORDBREAKS) only for some setups;
			# an option with a separate argument consumes the next word.
			if _agentjail_opt_with_arg "$w" && ((i + 1 < COMP_CWORD)); then
				if [[ ${COMP_WORDS[i + 1]} == = ]]; then
					i=$((i + 2))
				else
					i=$((i + 1))
				fi
			fi
			;;
		*)
			cmd_at=$i
			break
			;;
		esac
	done

	case $sub in
	check | profiles)
		return 0
		;;
	esac

	# In the jailed command: complete it like a command line of its own.
	if ((cmd_at > 0)); then
		if ((COMP_CWORD == cmd_at)); then
			_agentjail_set compgen -c -- "$cur"
		elif declare -F _command_offset >/dev/null; then
			_command_offset "$cmd_at"
		else
			compopt -o default 2>/dev/null
			COMPREPLY=()
		fi
		return 0
	fi

	prev=${COMP_WORDS[COMP_CWORD - 1]}
	# --opt=value, whether or not bash split the word at '='.
	if [[ $cur == --*=* ]]; then
		_agentjail_complete_arg "${cur%%=*}" "${cur#*=}" "$aj"
		return 0
	fi
	if [[ $prev == = ]] && ((COMP_CWORD >= 2)) &&
		_agentjail_opt_with_arg "${COMP_WORDS[COMP_CWORD - 2]}"; then
		_agentjail_complete_arg "${COMP_WORDS[COMP_CWORD - 2]}" "$cur" "$aj"
		return 0
	fi
	if [[ $cur == = ]] && _agentjail_opt_with_arg "$prev"; then
		_agentjail_complete_arg "$prev" "" "$aj"
		return 0
	fi
	if _agentjail_opt_with_arg "$prev"; then
		_agentjail_complete_arg "$prev" "$cur" "$aj"
		return 0
	fi

	if [[ $cur == -* ]]; then
		local opts='-C --workspace --profile --ro --rw --hide --overlay --env --net
			--allow --deny --add-host --secret --upstream-ca --log --trust-workspace
			-q --quiet -h --help -V --version --'
		[[ -n $sub ]] && opts=${opts/-h --help -V --version/}
		_agentjail_set compgen -W "$opts" -- "$cur"
		return 0
	fi

	# The first word may be a subcommand or the command itself.
	if ((COMP_CWORD == 1)); then
		_agentjail_set compgen -W 'check profiles explain' -- "$cur"
		[[ -n $cur ]] && _agentjail_add compgen -c -- "$cur"
		return 0
	fi
	_agentjail_set compgen -c -- "$cur"
	return 0
}

complete -F _agentjail agentjail
