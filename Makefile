# sluice -- build, run and test.  Plain GNU make; see README.md.
#
#   make                 build sluiced and sluicectl into build/
#   make run             install what is missing, build, run on etc/sluice.conf
#   make test            install what is missing, build, run every test
#   make SANITIZER=address|undefined|address,undefined ...
#                        the same in build-<sanitizer>/
#   make fuzz            run the libFuzzer targets for FUZZ_SECONDS each
#   make bench           benchmark against Postfix (docs/performance.md)

CC		?= cc
SANITIZER	?=
WERROR		?=
PYTHON		:= /usr/bin/python3
FUZZ_SECONDS	?= 60

PKGS		:= libevent libevent_openssl libevent_pthreads openssl libconfig \
		   libunbound libcrypt

comma		:= ,
ifeq ($(SANITIZER),)
BUILD		:= build
SANFLAGS	:=
OPT		:= -O2 -D_FORTIFY_SOURCE=2
else
BUILD		:= build-$(subst $(comma),-,$(SANITIZER))
SANFLAGS	:= -fsanitize=$(SANITIZER) -fno-omit-frame-pointer \
		   -fno-sanitize-recover=all
OPT		:= -O1
endif

CFLAGS		?= -g
CFLAGS		+= -std=c11 -D_GNU_SOURCE -Wall -Wextra $(OPT) \
		   -fstack-protector-strong -fPIE -pthread $(SANFLAGS) \
		   $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
ifneq ($(WERROR),)
CFLAGS		+= -Werror
endif
LDFLAGS		+= -pie -pthread $(SANFLAGS)
LDLIBS		+= $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm

PROGS		:= sluiced sluicectl
LIB_SRCS	:= $(filter-out $(PROGS:%=src/%.c),$(wildcard src/*.c))
LIB_OBJS	:= $(LIB_SRCS:src/%.c=$(BUILD)/obj/%.o)
UNIT_SRCS	:= $(wildcard tests/unit/test_*.c)
UNIT_BINS	:= $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

# Pure modules the fuzz targets link (no event loop, no I/O).
FUZZ_LIB	:= src/smtp_parse.c src/buf.c src/util.c src/log.c
FUZZ_SRCS	:= $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS	:= $(FUZZ_SRCS:tests/fuzz/%.c=build-fuzz/%)

all: $(PROGS:%=$(BUILD)/%)

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libsluice.a: $(LIB_OBJS)
	$(AR) rcs $@ $^

$(BUILD)/%: $(BUILD)/obj/%.o $(BUILD)/libsluice.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libsluice.a $(wildcard src/*.h) \
		$(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ $< $(BUILD)/libsluice.a \
		$(LDLIBS) -lcmocka

# Test tools: small programs the pytest suites drive.
$(BUILD)/client_drive: tests/tools/client_drive.c $(BUILD)/libsluice.a \
		$(wildcard src/*.h)
	$(CC) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ $< $(BUILD)/libsluice.a $(LDLIBS)

build-fuzz/%: tests/fuzz/%.c $(FUZZ_LIB) $(wildcard src/*.h) \
		$(wildcard tests/fuzz/*.h)
	@mkdir -p $(@D)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -Isrc \
		-fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_LIB)

deps:
	@scripts/install-deps

run: deps all
	@mkdir -p var
	$(BUILD)/sluiced -d -f etc/sluice.conf

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

E2E_DIRS	:= $(wildcard tests/conf tests/smtp tests/client tests/relay \
		   tests/auth tests/security)

e2e: all $(BUILD)/client_drive
	SLUICE_BUILD=$(CURDIR)/$(BUILD) $(PYTHON) -m pytest -q -p no:cacheprovider \
		$(E2E_DIRS)

check: unit e2e

fuzz-build: $(FUZZ_BINS)

# Replay every saved corpus, then fuzz each target briefly.
fuzz-check: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do n=$${f##*/}; \
		mkdir -p tests/fuzz/corpus/$$n; \
		echo "== $$n"; \
		$$f -runs=0 tests/fuzz/corpus/$$n 2>&1 | tail -1; \
		$$f -max_total_time=10 -max_len=4096 \
			-artifact_prefix=build-fuzz/ 2>&1 | tail -1; \
	done

fuzz: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do n=$${f##*/}; \
		mkdir -p tests/fuzz/corpus/$$n; \
		$$f -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
			-artifact_prefix=build-fuzz/ tests/fuzz/corpus/$$n; \
	done

# One sanitizer pass with both ASan and UBSan keeps make test within its
# time budget on two cores.
test: deps
	$(MAKE) all
	$(MAKE) check
	$(MAKE) SANITIZER=address,undefined check
	$(MAKE) fuzz-check

bench: deps all
	bench/run-bench

# Install: binaries 0755, configuration 0644 (kept if present), spool
# 0700 owned by the unprivileged user.  Nothing world-writable.
PREFIX		?= /usr/local
DESTDIR		?=
SPOOL		?= /var/spool/sluice
MAILROOT	?= /var/mail/sluice

install: all
	install -d -m 0755 $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)/etc/sluice
	install -m 0755 $(BUILD)/sluiced $(BUILD)/sluicectl \
		$(DESTDIR)$(PREFIX)/sbin/
	install -d -m 0755 $(DESTDIR)$(PREFIX)/share $(DESTDIR)$(PREFIX)/share/man \
		$(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 0644 man/sluiced.8 man/sluicectl.8 \
		$(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 0644 man/sluice.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	sed -e 's|"./var/spool"|"$(SPOOL)"|' etc/sluice.conf \
		> $(DESTDIR)/etc/sluice/sluice.conf.example
	chmod 0644 $(DESTDIR)/etc/sluice/sluice.conf.example
	test -e $(DESTDIR)/etc/sluice/sluice.conf || \
		install -m 0644 $(DESTDIR)/etc/sluice/sluice.conf.example \
			$(DESTDIR)/etc/sluice/sluice.conf
	install -d -m 0700 $(DESTDIR)$(SPOOL) $(DESTDIR)$(MAILROOT)
	-chown sluice:sluice $(DESTDIR)$(SPOOL) $(DESTDIR)$(MAILROOT)

clean:
	rm -rf build build-* var

.PHONY: all deps run unit e2e check fuzz-build fuzz-check fuzz test bench \
	install clean
.SECONDARY:
