# Installs greenify under a prefix: `make install PREFIX=/usr/local` (DESTDIR= for staging).
# Installed: PREFIX/bin/greenify (the wrapper), PREFIX/lib/greenify/{libgreenify.so,greenify-ctl},
# PREFIX/share/man/man1/greenify.1 and PREFIX/share/doc/greenify/ (README, licences).
# LIB=path installs that library instead of building target/release/libgreenify.so;
# CTL=path likewise for target/release/greenify-ctl.

PREFIX ?= /usr/local
DESTDIR ?=
CARGO ?= cargo
LIB ?= target/release/libgreenify.so
CTL ?= target/release/greenify-ctl
VERSION := $(shell sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)

bindir := $(DESTDIR)$(PREFIX)/bin
libdir := $(DESTDIR)$(PREFIX)/lib/greenify
mandir := $(DESTDIR)$(PREFIX)/share/man/man1
docdir := $(DESTDIR)$(PREFIX)/share/doc/greenify

.PHONY: all build build-lib build-ctl install uninstall

all: build

# Without LIB (CTL) on the command line, build the library (greenify-ctl) first; cargo does
# nothing when it is current.
ifeq ($(origin LIB),file)
install: build-lib
endif
ifeq ($(origin CTL),file)
install: build-ctl
endif

build: build-lib build-ctl

build-lib:
	$(CARGO) build --release -p greenify

build-ctl:
	$(CARGO) build --release -p greenify-ctl

install:
	test -n "$(VERSION)" || { echo "cannot read the version from Cargo.toml" >&2; exit 1; }
	install -d "$(bindir)" "$(libdir)" "$(mandir)" "$(docdir)"
	install -m 0755 "$(LIB)" "$(libdir)/libgreenify.so"
	install -m 0755 "$(CTL)" "$(libdir)/greenify-ctl"
	sed 's/^installed_version=$$/installed_version=$(VERSION)/' scripts/greenify > "$(bindir)/greenify.tmp"
	grep -q '^installed_version=$(VERSION)$$' "$(bindir)/greenify.tmp"
	chmod 0755 "$(bindir)/greenify.tmp"
	mv -f "$(bindir)/greenify.tmp" "$(bindir)/greenify"
	install -m 0644 docs/greenify.1 "$(mandir)/greenify.1"
	install -m 0644 README.md LICENSE-MIT LICENSE-APACHE "$(docdir)/"

uninstall:
	rm -f "$(bindir)/greenify" "$(libdir)/libgreenify.so" "$(libdir)/greenify-ctl" "$(mandir)/greenify.1"
	rm -f "$(docdir)/README.md" "$(docdir)/LICENSE-MIT" "$(docdir)/LICENSE-APACHE"
	-rmdir "$(libdir)" "$(docdir)"
