# ngx_ecodoc_module: build the dynamic module against Debian's nginx-dev
# (or an nginx built from ../shared/nginx/, NGINX=VERSION), build
# ecodoc-ca, and run the tests and the demo.

SHELL     := /bin/bash

NGX_SRC   ?= /usr/share/nginx/src
BUILD     ?= $(CURDIR)/build

# NGINX: the nginx the module is built for and tested with. "debian" (or
# Debian's version, 1.22.1 on Debian 12): nginx-dev's sources and
# /usr/sbin/nginx. A version: $(NGX_DIST)/nginx-VERSION.tar.gz, built with
# the module into $(BUILD)/nginx-VERSION.
NGINX        ?= debian
NGX_DIST     ?= $(abspath $(CURDIR)/../shared/nginx)
NGX_VERSIONS := 1.24.0 1.26.3 1.30.4 1.31.4
NGX_DEBIAN   := $(shell dpkg-query -W -f='$${Version}' nginx-dev 2>/dev/null \
                  | sed 's/-.*//')

ifeq ($(filter-out debian $(NGX_DEBIAN),$(NGINX)),)
NGX_BUILD   := $(BUILD)/nginx
NGX_BIN     := /usr/sbin/nginx
NGX_TARGETS := modules
else
NGX_BUILD   := $(BUILD)/nginx-$(NGINX)
NGX_BIN     := $(NGX_BUILD)/objs/nginx
NGX_TARGETS := binary modules
NGX_TARBALL := $(NGX_DIST)/nginx-$(NGINX).tar.gz
endif

# Debian's conf_flags without its paths: the same modules, and the ones
# the tests use (ssl, http_v2, threads)
NGX_CONF_FLAGS := --with-compat --with-debug --with-pcre-jit --with-threads \
    --with-http_ssl_module --with-http_v2_module \
    --with-http_stub_status_module --with-http_realip_module \
    --with-http_auth_request_module --with-http_dav_module \
    --with-http_slice_module

# nginx's (and the module's) --with-cc-opt and --with-ld-opt; test-asan
# adds the sanitizers
NGX_CC_OPT ?= -O2 -g
NGX_LD_OPT ?=

MODULE    := $(NGX_BUILD)/objs/ngx_http_ecodoc_module.so
CA_TOOL   := $(BUILD)/ecodoc-ca

CC        ?= cc
CFLAGS    ?= -O2 -g
CA_CFLAGS := -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror \
             -Ingx_ecodoc_module $(CFLAGS)
CA_LIBS   := -lmicrohttpd -lhiredis -lssl -lcrypto -lpthread

# the Redis scripts (lua/), made into C for each program at build time
LUA         := $(wildcard lua/*.lua) scripts/lua2c
CA_LUA      := $(BUILD)/ecodoc_ca_lua.c
CA_SCRIPTS  := user_add user_reset user_unlock user_delete user_show revoke \
               cert_record enroll_new enroll_try enroll_tried enroll_redeem \
               enroll_release enroll_set reserve finish cert_states

MODULE_SRCS := config $(wildcard ngx_ecodoc_module/*.c ngx_ecodoc_module/*.h)
CA_SRCS     := $(wildcard ca-tools/*.c ca-tools/*.h) \
               ngx_ecodoc_module/ecodoc_passwd.c ngx_ecodoc_module/ecodoc_passwd.h \
               ngx_ecodoc_module/ecodoc_web.c ngx_ecodoc_module/ecodoc_web.h \
               ngx_ecodoc_module/ecodoc_lua.h

# prometheus: promtool, which t/metrics.t runs on the metrics and the alerts
DEB_PKGS := nginx-core nginx-dev redis-server redis-sentinel libhiredis-dev \
            libssl-dev libmicrohttpd-dev libpcre2-dev zlib1g-dev openssl gcc \
            make perl libio-socket-ssl-perl libnet-ssleay-perl curl prometheus

.PHONY: all deps test test-asan test-deps matrix e2e e2e-deps demo bench bench-deps race \
        failover fuzz fuzz-deps fuzz-replay fuzz-cov deb test-deb clean

all: $(MODULE) $(CA_TOOL)

# installs the Debian packages that are missing (root on Debian 12)
deps:
	@scripts/apt-missing $(DEB_PKGS)

# the build dependencies, named when missing (a fresh machine: `make deps`)
BUILD_PKGS := libhiredis-dev libssl-dev libmicrohttpd-dev libpcre2-dev \
              zlib1g-dev gcc make

ifndef NGX_TARBALL
$(NGX_BUILD)/objs/Makefile: config Makefile $(LUA)
	@scripts/need-packages nginx-dev $(BUILD_PKGS)
	rm -rf $(NGX_BUILD)
	mkdir -p $(BUILD)
	cp -r $(NGX_SRC) $(NGX_BUILD)
	. $(NGX_BUILD)/conf_flags && cd $(NGX_BUILD) && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" --with-cc-opt="$(NGX_CC_OPT)" \
	        --with-ld-opt="$(NGX_LD_OPT)" \
	        --add-dynamic-module=$(CURDIR) > $(BUILD)/configure.log
else
$(NGX_BUILD)/objs/Makefile: config Makefile $(LUA) $(NGX_TARBALL)
	@scripts/need-packages $(BUILD_PKGS)
	rm -rf $(NGX_BUILD)
	mkdir -p $(BUILD)
	tar xzf $(NGX_TARBALL) -C $(BUILD)
	cd $(NGX_BUILD) && auto/configure $(NGX_CONF_FLAGS) \
	    --prefix=$(NGX_BUILD) --with-cc-opt="$(NGX_CC_OPT)" \
	    --with-ld-opt="$(NGX_LD_OPT)" \
	    --add-dynamic-module=$(CURDIR) > $(BUILD)/configure-$(NGINX).log

$(NGX_TARBALL):
	@echo "NGINX=$(NGINX): no $@ (the versions: debian $(NGX_VERSIONS))"
	@exit 1
endif

$(MODULE): $(NGX_BUILD)/objs/Makefile $(MODULE_SRCS)
	nice $(MAKE) -j2 -C $(NGX_BUILD) -f objs/Makefile $(NGX_TARGETS)

$(CA_LUA): $(LUA) Makefile
	mkdir -p $(BUILD)
	sh scripts/lua2c lua $@ $(CA_SCRIPTS)

$(CA_TOOL): $(CA_SRCS) $(CA_LUA)
	$(CC) $(CA_CFLAGS) $(CPPFLAGS) $(LDFLAGS) -o $@ $(filter %.c,$^) $(CA_LIBS)

# every test; t/e2e.t (the browser journey, as `make e2e` runs it) among them
# what the tests use beyond the build: the modules of Debian's nginx-extras
# (t/debian_conf.t loads this module beside them in Debian's nginx.conf);
# valgrind (t/ca_valgrind.t)
TEST_PKGS := valgrind libnginx-mod-http-geoip libnginx-mod-http-image-filter \
             libnginx-mod-http-perl libnginx-mod-http-xslt-filter \
             libnginx-mod-mail libnginx-mod-stream libnginx-mod-stream-geoip \
             libnginx-mod-http-auth-pam libnginx-mod-http-cache-purge \
             libnginx-mod-http-dav-ext libnginx-mod-http-echo \
             libnginx-mod-http-fancyindex libnginx-mod-http-geoip2 \
             libnginx-mod-http-headers-more-filter libnginx-mod-http-lua \
             libnginx-mod-http-subs-filter libnginx-mod-http-uploadprogress \
             libnginx-mod-http-upstream-fair libnginx-mod-nchan \
             libnginx-mod-stream-geoip2

test-deps: deps e2e-deps fuzz-deps
	@scripts/apt-missing $(TEST_PKGS)

test: test-deps
	$(MAKE) all
	ECODOC_NGINX=$(NGX_BIN) ECODOC_MODULE=$(MODULE) ECODOC_CA=$(CA_TOOL) \
	    prove -r t/

# the whole suite under AddressSanitizer and UBSan (README "Sanitizers"):
# nginx ASAN_NGINX with the module, and ecodoc-ca, built with SAN_FLAGS
# into ASAN_BUILD. Every process writes its reports to a file under
# ASAN_REPORTS (log_path, set per test file by the harness, which fails
# the test file when one exists). Leaks: on for ecodoc-ca and nginx,
# t/sanitizer/lsan.supp names what is not ours. Not in CI (slow).
ASAN_NGINX   ?= 1.30.4
ASAN_BUILD   ?= $(BUILD)/asan
ASAN_REPORTS := $(ASAN_BUILD)/reports
SAN_FLAGS    := -fsanitize=address,undefined -fno-omit-frame-pointer
SAN_CFLAGS   := -O1 -g $(SAN_FLAGS)
# nginx without its process titles: they overwrite the initial environment,
# where UBSan, at its first report, reads UBSAN_OPTIONS (/proc/self/environ)
SAN_NGX_OPT  := -DNGX_SETPROCTITLE_USES_ENV=0 \
                '-Dngx_init_setproctitle(log)=NGX_OK' '-Dngx_setproctitle(t)='
SAN_SUPP     := $(CURDIR)/t/sanitizer
ASAN_OPTS    := suppressions=$(SAN_SUPP)/asan.supp:detect_leaks=1:log_exe_name=1:$\
                detect_stack_use_after_return=1:strict_string_checks=1:$\
                check_initialization_order=1
UBSAN_OPTS   := suppressions=$(SAN_SUPP)/ubsan.supp:halt_on_error=1:$\
                print_stacktrace=1
LSAN_OPTS    := suppressions=$(SAN_SUPP)/lsan.supp:print_suppressions=0

test-asan: test-deps
	CFLAGS="$(SAN_CFLAGS)" LDFLAGS="$(SAN_FLAGS)" \
	    $(MAKE) all NGINX=$(ASAN_NGINX) BUILD=$(ASAN_BUILD) \
	    NGX_CC_OPT="$(SAN_CFLAGS) $(SAN_NGX_OPT)" NGX_LD_OPT="$(SAN_FLAGS)"
	rm -rf $(ASAN_REPORTS)
	mkdir -p $(ASAN_REPORTS)
	ECODOC_NGINX=$(ASAN_BUILD)/nginx-$(ASAN_NGINX)/objs/nginx \
	ECODOC_MODULE=$(ASAN_BUILD)/nginx-$(ASAN_NGINX)/objs/ngx_http_ecodoc_module.so \
	ECODOC_CA=$(ASAN_BUILD)/ecodoc-ca ECODOC_SANITIZER_DIR=$(ASAN_REPORTS) \
	ASAN_OPTIONS=$(ASAN_OPTS):log_path=$(ASAN_REPORTS)/report \
	UBSAN_OPTIONS=$(UBSAN_OPTS):log_path=$(ASAN_REPORTS)/report \
	LSAN_OPTIONS=$(LSAN_OPTS) \
	    prove -r t/; rc=$$?; \
	reports=$$(find $(ASAN_REPORTS) -type f); \
	if [ -n "$$reports" ]; then echo "sanitizer reports:" $$reports; rc=1; fi; \
	exit $$rc

# `make test` against Debian's nginx and each version in NGX_VERSIONS, one
# line per version (its log in $(BUILD)/matrix/)
matrix: deps e2e-deps
	@MAKE="$(MAKE)" BUILD="$(BUILD)" scripts/matrix debian $(NGX_VERSIONS)

# the whole journey in headless Chromium (e2e/README.md); refreshes the
# screenshots in docs/screenshots/
E2E_PKGS := chromium libnss3-tools fonts-ipafont-gothic
E2E_LOCK := e2e/node_modules/.package-lock.json

e2e: e2e-deps
	$(MAKE) all
	ECODOC_NGINX=$(NGX_BIN) ECODOC_MODULE=$(MODULE) ECODOC_CA=$(CA_TOOL) \
	    ECODOC_SCREENSHOTS=docs/screenshots prove -v t/e2e.t

# Debian's chromium, NSS tools and a Japanese font (and Node.js if there is
# none), then playwright-core as pinned by e2e/package-lock.json
e2e-deps: deps
	@scripts/apt-missing $(E2E_PKGS) \
	    $$(command -v node >/dev/null || echo nodejs) \
	    $$(command -v npm >/dev/null || echo npm)
	@$(MAKE) --no-print-directory $(E2E_LOCK) \
	    || echo "npm ci failed: t/e2e.t will say it cannot run"

$(E2E_LOCK): e2e/package.json e2e/package-lock.json
	cd e2e && npm ci --no-audit --no-fund
	touch $@

demo: deps
	$(MAKE) all
	ECODOC_MODULE=$(MODULE) ECODOC_CA=$(CA_TOOL) perl demo/run.pl

# the benchmark against plain nginx and the peers (bench/RESULTS.md)
BENCH_PKGS := apache2-utils libnginx-mod-http-lua lua-nginx-redis \
              lua-nginx-string valgrind redis-tools time

bench-deps: deps
	@scripts/apt-missing $(BENCH_PKGS)

bench: bench-deps
	$(MAKE) all
	ECODOC_MODULE=$(MODULE) ECODOC_CA=$(CA_TOOL) perl bench/bench.pl

# the race tester, long form (README "The race tester"): random schedules
# for RACE_SECONDS (default 600); RACE_SEED=N replays one, RACE_SCHEDULES=N
# bounds them, RACE_STOP=1 stops at the first violation. t/race.t, in
# `make test`, is the short form.
RACE_SECONDS ?= 600

race: deps
	$(MAKE) all
	ECODOC_NGINX=$(NGX_BIN) ECODOC_MODULE=$(MODULE) ECODOC_CA=$(CA_TOOL) \
	    RACE_SECONDS=$(RACE_SECONDS) perl scripts/race.pl

# the Redis failover test, long form (README "Several nginx, one Redis
# set"): FAILOVER_ROUNDS kills of the master under load (t/failover.t, in
# `make test`, kills twice)
FAILOVER_ROUNDS ?= 10

failover: deps
	$(MAKE) all
	ECODOC_NGINX=$(NGX_BIN) ECODOC_MODULE=$(MODULE) ECODOC_CA=$(CA_TOOL) \
	    ECODOC_FAILOVER_ROUNDS=$(FAILOVER_ROUNDS) prove -v t/failover.t

# fuzzing (docs/fuzzing.md): one libFuzzer harness per parser, fuzz/NAME/,
# built by fuzz/fuzz.mk with clang against nginx FUZZ_NGINX's objects
# (built once into $(BUILD)/fuzz-nginx) and ecodoc-ca's. `make fuzz`
# builds them into $(BUILD)/fuzz and runs each for FUZZ_TIME seconds
# (FUZZ_HARNESSES: some of them) on its corpus, finds into
# $(BUILD)/fuzz/work/NAME; fuzz-replay
# builds them without libFuzzer (under ASan and UBSan) for t/fuzz_corpus.t,
# which replays every corpus file; fuzz-cov replays the corpora and the
# finds in a coverage build and reports the lines covered (llvm-cov).
FUZZ_TIME      ?= 180
FUZZ_NGINX     ?= 1.30.4
FUZZ_HARNESSES ?= form cookie lang next redis_reply passwd ca_csr ca_site \
                  ca_p12
FUZZ_PKGS      := clang libclang-rt-14-dev llvm binutils
FUZZ_MK         = $(MAKE) --no-print-directory -f fuzz/fuzz.mk TOP=$(CURDIR) \
                  NGX_VER=$(FUZZ_NGINX) NGX_DIST=$(NGX_DIST) CA_LUA=$(CA_LUA) \
                  NGX_BUILD=$(BUILD)/fuzz-nginx \
                  CA_SRCS="$(filter %.c,$(CA_SRCS))" CA_LIBS="$(CA_LIBS)"

fuzz-deps:
	@scripts/apt-missing $(FUZZ_PKGS)

fuzz: deps fuzz-deps $(CA_LUA)
	$(FUZZ_MK) MODE=fuzz OUT=$(BUILD)/fuzz
	fuzz/run $(BUILD)/fuzz $(FUZZ_TIME) $(FUZZ_HARNESSES)

fuzz-replay: $(CA_LUA)
	@scripts/need-packages $(BUILD_PKGS) $(FUZZ_PKGS)
	$(FUZZ_MK) MODE=replay OUT=$(BUILD)/fuzz-replay

fuzz-cov: $(CA_LUA)
	@scripts/need-packages $(BUILD_PKGS) $(FUZZ_PKGS)
	$(FUZZ_MK) MODE=cov OUT=$(BUILD)/fuzz-cov
	fuzz/coverage $(BUILD)/fuzz-cov $(BUILD)/fuzz/work $(FUZZ_HARNESSES)

# the Debian packages (README "Debian packages"): libnginx-mod-http-ecodoc
# and ecodoc-ca, built by dpkg-buildpackage from a copy of this tree
# (packaging/debian/ as its debian/) into $(BUILD)/deb/, then lintian
DEB_DIR        := $(BUILD)/deb
DEB_BUILD_PKGS := debhelper dpkg-dev nginx-dev libhiredis-dev libssl-dev \
                  libmicrohttpd-dev libpcre2-dev zlib1g-dev gcc make lintian

deb:
	@scripts/apt-missing $(DEB_BUILD_PKGS)
	scripts/deb $(DEB_DIR)

# installs both packages on this machine, checks them and purges them
# (root; t/deb.t, which `make test` skips without ECODOC_DEB_DIR)
test-deb: deb
	ECODOC_DEB_DIR=$(DEB_DIR) prove -v t/deb.t

clean:
	rm -rf $(BUILD)
