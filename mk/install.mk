# mk/install.mk - install, uninstall, deb.  Included by the Makefile, which defines
# PREFIX, DESTDIR, BINDIR, MANDIR and VERSION.
#
#   make install   [PREFIX=/usr/local] [DESTDIR=] [APPARMOR=auto|yes|no]
#   make uninstall (same variables)
#   make deb       agentjail_VERSION_ARCH.deb, built with dpkg-deb from a staged tree
#
# The AppArmor profile (apparmor/agentjail) lets the installed binary create user
# namespaces on Ubuntu 23.10+, where kernel.apparmor_restrict_unprivileged_userns=1 denies
# them to unconfined programs.  APPARMOR=auto installs it when /etc/apparmor.d exists on
# this machine; the profile is loaded with apparmor_parser when installing for real
# (no DESTDIR) and AppArmor is enabled.

BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
APPARMORDIR ?= /etc/apparmor.d
APPARMOR    ?= auto
INSTALL     ?= install

# Files that make install writes, relative to DESTDIR (the AppArmor profile is extra).
INSTALLED_FILES = $(BINDIR)/agentjail $(MANDIR)/man1/agentjail.1 \
		  $(MANDIR)/man5/agentjail-profile.5 \
		  $(BASHCOMPDIR)/agentjail $(ZSHCOMPDIR)/_agentjail

# Whether the AppArmor profile is part of this install: yes, no, or auto (the host has
# /etc/apparmor.d, and we can write there or are staging into a DESTDIR).  Evaluated by
# the shell in the recipes.
AA_WANTED = case '$(APPARMOR)' in yes) true ;; no) false ;; \
	*) test -d /etc/apparmor.d || exit 1; \
	   if [ -z '$(DESTDIR)' ] && [ ! -w '$(APPARMORDIR)' ]; then \
		echo "note: cannot write $(APPARMORDIR): AppArmor profile not installed (as root: make install APPARMOR=yes)"; \
		exit 1; \
	   fi ;; esac
# AppArmor is running in this kernel and we may load profiles.
AA_ACTIVE = test -z '$(DESTDIR)' && command -v apparmor_parser >/dev/null 2>&1 && \
	    test "$$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y

install: agentjail agentjail.1 agentjail-profile.5 completions/agentjail.bash \
	 completions/_agentjail apparmor/agentjail
	$(INSTALL) -d '$(DESTDIR)$(BINDIR)' '$(DESTDIR)$(MANDIR)/man1' \
		'$(DESTDIR)$(MANDIR)/man5' '$(DESTDIR)$(BASHCOMPDIR)' '$(DESTDIR)$(ZSHCOMPDIR)'
	$(INSTALL) -m 0755 agentjail '$(DESTDIR)$(BINDIR)/agentjail'
	$(INSTALL) -m 0644 agentjail.1 '$(DESTDIR)$(MANDIR)/man1/agentjail.1'
	$(INSTALL) -m 0644 agentjail-profile.5 '$(DESTDIR)$(MANDIR)/man5/agentjail-profile.5'
	$(INSTALL) -m 0644 completions/agentjail.bash '$(DESTDIR)$(BASHCOMPDIR)/agentjail'
	$(INSTALL) -m 0644 completions/_agentjail '$(DESTDIR)$(ZSHCOMPDIR)/_agentjail'
	@if ( $(AA_WANTED) ); then \
		echo "install apparmor/agentjail -> $(DESTDIR)$(APPARMORDIR)/agentjail (for $(BINDIR)/agentjail)"; \
		$(INSTALL) -d '$(DESTDIR)$(APPARMORDIR)' && \
		sed 's|@BINDIR@|$(BINDIR)|g' apparmor/agentjail > '$(DESTDIR)$(APPARMORDIR)/agentjail.tmp' && \
		chmod 0644 '$(DESTDIR)$(APPARMORDIR)/agentjail.tmp' && \
		mv -f '$(DESTDIR)$(APPARMORDIR)/agentjail.tmp' '$(DESTDIR)$(APPARMORDIR)/agentjail' || exit 1; \
		if $(AA_ACTIVE); then \
			if apparmor_parser -r -T -W '$(APPARMORDIR)/agentjail'; then \
				echo "loaded the AppArmor profile $(APPARMORDIR)/agentjail"; \
			elif [ ! -e /proc/sys/kernel/apparmor_restrict_unprivileged_userns ]; then \
				echo "this AppArmor cannot load the profile (no 'userns' rule) and does not restrict user namespaces: not installing it"; \
				rm -f '$(APPARMORDIR)/agentjail'; \
			else \
				echo "warning: apparmor_parser could not load $(APPARMORDIR)/agentjail; run 'agentjail check'" >&2; \
			fi; \
		fi; \
	fi

uninstall:
	@if [ -f '$(DESTDIR)$(APPARMORDIR)/agentjail' ] && \
	    grep -q ' $(BINDIR)/agentjail ' '$(DESTDIR)$(APPARMORDIR)/agentjail'; then \
		if $(AA_ACTIVE); then \
			apparmor_parser -R '$(APPARMORDIR)/agentjail' 2>/dev/null || true; \
		fi; \
		echo "rm -f $(DESTDIR)$(APPARMORDIR)/agentjail"; \
		rm -f '$(DESTDIR)$(APPARMORDIR)/agentjail'; \
	fi
	rm -f $(foreach f,$(INSTALLED_FILES),'$(DESTDIR)$(f)')

# ---- Debian package ----------------------------------------------------------------------
DEB_ARCH    = $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB_STAGE   = build/deb/agentjail_$(VERSION)_$(DEB_ARCH)
DEB_FILE    = agentjail_$(VERSION)_$(DEB_ARCH).deb
DEB_DOCS    = $(wildcard README.md docs/*.md)

deb: agentjail
	@# agentjail is built: the install below must not try to rebuild it (-o).
	@command -v dpkg-deb >/dev/null || { echo "make deb needs dpkg-deb (apt-get install dpkg)" >&2; exit 1; }
	rm -rf '$(DEB_STAGE)'
	$(MAKE) --no-print-directory -o agentjail install DESTDIR='$(abspath $(DEB_STAGE))' APPARMOR=yes \
		PREFIX=/usr BINDIR=/usr/bin MANDIR=/usr/share/man \
		BASHCOMPDIR=/usr/share/bash-completion/completions \
		ZSHCOMPDIR=/usr/share/zsh/vendor-completions
	strip --strip-unneeded --remove-section=.comment --remove-section=.note \
		'$(DEB_STAGE)/usr/bin/agentjail'
	gzip -9n '$(DEB_STAGE)/usr/share/man/man1/agentjail.1' \
		'$(DEB_STAGE)/usr/share/man/man5/agentjail-profile.5'
	$(INSTALL) -d '$(DEB_STAGE)/usr/share/doc/agentjail' '$(DEB_STAGE)/DEBIAN'
	$(INSTALL) -m 0644 packaging/copyright '$(DEB_STAGE)/usr/share/doc/agentjail/copyright'
	$(if $(DEB_DOCS),$(INSTALL) -m 0644 $(DEB_DOCS) '$(DEB_STAGE)/usr/share/doc/agentjail/')
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@DATE@/'"$$(date -R -u -d @$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || date +%s)})"'/' \
		packaging/changelog | gzip -9n > '$(DEB_STAGE)/usr/share/doc/agentjail/changelog.gz'
	$(INSTALL) -m 0755 packaging/postinst packaging/prerm packaging/postrm '$(DEB_STAGE)/DEBIAN/'
	$(INSTALL) -m 0644 packaging/conffiles '$(DEB_STAGE)/DEBIAN/conffiles'
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' \
	    -e "s/@SIZE@/$$(du -sk --exclude=DEBIAN '$(DEB_STAGE)' | cut -f1)/" \
		packaging/control > '$(DEB_STAGE)/DEBIAN/control'
	cd '$(DEB_STAGE)' && find usr -type f -exec md5sum {} + | sort -k2 > DEBIAN/md5sums
	dpkg-deb --root-owner-group -Zxz --build '$(DEB_STAGE)' '$(DEB_FILE)'

.PHONY: install uninstall deb
