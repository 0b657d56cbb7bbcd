# The fuzz harnesses (docs/fuzzing.md), built in one of three ways into OUT:
# MODE=fuzz (libFuzzer), replay (a plain main that runs each file once, for
# `make test`) or cov (replay with llvm's coverage). Called by the Makefile.

SHELL      := /bin/bash

TOP        ?= $(CURDIR)
OUT        ?= $(TOP)/build/fuzz
MODE       ?= fuzz
NGX_VER    ?= 1.30.4
NGX_DIST   ?= $(abspath $(TOP)/../shared/nginx)
CA_LUA     ?= $(TOP)/build/ecodoc_ca_lua.c

# the harnesses: of the module (with nginx's core), of the shared password
# hash code, of ecodoc-ca
MOD_HARNESSES := form cookie lang next redis_reply
CA_HARNESSES  := passwd ca_csr ca_site ca_p12
HARNESSES     := $(MOD_HARNESSES) $(CA_HARNESSES)

ifeq ($(MODE),fuzz)
CC         := clang
SAN        := -fsanitize=address,undefined -fno-sanitize-recover=all
CC_FLAGS   := -O1 -g -fno-omit-frame-pointer $(SAN) -fsanitize=fuzzer-no-link
MAIN_LINK  := -fsanitize=fuzzer $(SAN)
else ifeq ($(MODE),replay)
CC         := clang
SAN        := -fsanitize=address,undefined -fno-sanitize-recover=all
CC_FLAGS   := -O1 -g -fno-omit-frame-pointer $(SAN)
MAIN_LINK  := $(OUT)/replay.o $(SAN)
else ifeq ($(MODE),cov)
CC         := clang
CC_FLAGS   := -O0 -g -fprofile-instr-generate -fcoverage-mapping
MAIN_LINK  := $(OUT)/replay.o -fprofile-instr-generate
else
$(error MODE is fuzz, replay or cov)
endif

# nginx's core, built once for every MODE, without instrumentation: only
# the module's files (and ecodoc-ca's, and the harnesses) are built with
# the MODE's flags; nginx's allocations are malloc()'s, which ASan sees
NGX_BUILD  ?= $(TOP)/build/fuzz-nginx
NGX        := $(NGX_BUILD)/nginx-$(NGX_VER)
NGX_LIB    := $(NGX_BUILD)/libngx.a
CA_LIB     := $(OUT)/libca.a

# nginx with the module built in, and little else: the harnesses need its
# core, its HTTP structures and the module's files
NGX_FLAGS  := --with-threads --with-http_ssl_module \
              --without-http_gzip_module --without-http_proxy_module \
              --without-http_fastcgi_module --without-http_uwsgi_module \
              --without-http_scgi_module --without-http_grpc_module \
              --without-http_memcached_module --without-http_ssi_module \
              --without-http_userid_module --without-http_autoindex_module \
              --without-http_geo_module --without-http_map_module \
              --without-http_split_clients_module \
              --without-http_referer_module --without-http_empty_gif_module \
              --without-http_browser_module \
              --without-http_upstream_hash_module \
              --without-http_upstream_ip_hash_module \
              --without-http_upstream_least_conn_module \
              --without-http_upstream_random_module \
              --without-http_upstream_keepalive_module \
              --without-http_upstream_zone_module \
              --without-http_mirror_module --without-http_limit_conn_module \
              --without-http_limit_req_module --without-http_auth_basic_module \
              --without-http_access_module --without-http_charset_module \
              --without-http_rewrite_module --without-http-cache --with-pcre

# the flags, rewritten when they change: nginx is configured again then
NGX_STAMP  := $(NGX_BUILD)/configure-flags
$(shell mkdir -p $(NGX_BUILD); echo '$(NGX_FLAGS)' | cmp -s - $(NGX_STAMP) \
        || echo '$(NGX_FLAGS)' > $(NGX_STAMP))

NGX_INCS   := -I$(NGX)/src/core -I$(NGX)/src/event -I$(NGX)/src/event/modules \
              -I$(NGX)/src/os/unix -I$(NGX)/src/http -I$(NGX)/src/http/modules \
              -I$(NGX)/objs -I$(TOP)/ngx_ecodoc_module
NGX_LIBS   := -lcrypt -lpcre2-8 -lssl -lcrypto -lz -lpthread -lhiredis

# the module's files (config's list) and its scripts, made C by configure
MOD_SRCS   := $(wildcard $(TOP)/ngx_ecodoc_module/*.c)
MOD_OBJS   := $(patsubst %.c,$(OUT)/mod/%.o,$(notdir $(MOD_SRCS))) \
              $(OUT)/mod/ngx_http_ecodoc_lua.o
# the module's files with nginx's warnings for clang (auto/cc/clang)
MOD_CFLAGS := -W -Wall -Wpointer-arith -Wno-unused-parameter \
              -Wconditional-uninitialized -Werror $(CC_FLAGS) $(NGX_INCS)

# ecodoc-ca's sources and libraries, as the Makefile gives them (its main
# renamed); an archive of them
CA_SRCS    ?= $(wildcard $(TOP)/ca-tools/*.c) \
              $(TOP)/ngx_ecodoc_module/ecodoc_passwd.c
CA_LIBS    ?= -lhiredis -lcrypto
CA_OBJS    := $(patsubst %.c,$(OUT)/ca/%.o,$(notdir $(CA_SRCS))) \
              $(OUT)/ca/ecodoc_ca_lua.o
CA_CFLAGS  := -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror \
              -I$(TOP)/ngx_ecodoc_module -I$(TOP)/ca-tools $(CC_FLAGS)

# the password hash harness: the stored string's parse at full speed, and
# scrypt only at a tiny cost (fuzz/passwd/passwd.c)
passwd_WRAP := -Wl,--wrap=EVP_KDF_CTX_set_params
# the PKCS#12 harness: the project's choices, 2048 iterations at most
ca_p12_WRAP := -Wl,--wrap=PKCS12_create_ex -Wl,--wrap=PKCS12_set_mac

.PHONY: all
all: $(addprefix $(OUT)/,$(HARNESSES))

# nginx, configured with the module (its ngx_modules.c names it) and built
# without it (its objects are MOD_OBJS): the archive is all of nginx's
# objects but objs/addon/, nginx.o with its main renamed (libFuzzer's or
# replay.c's main runs the harness)
$(NGX)/objs/Makefile: $(NGX_DIST)/nginx-$(NGX_VER).tar.gz $(TOP)/config \
                      $(NGX_STAMP)
	rm -rf $(NGX)
	mkdir -p $(NGX_BUILD)
	tar xzf $< -C $(NGX_BUILD)
	cd $(NGX) && auto/configure $(NGX_FLAGS) --with-cc=clang \
	    --with-cc-opt="-O1 -g" --add-module=$(TOP) \
	    > $(NGX_BUILD)/configure.log

$(NGX_LIB): $(NGX)/objs/Makefile
	nice $(MAKE) -j2 -C $(NGX) -f objs/Makefile LINK=true \
	    $$(sed -n 's|^\(objs/src/[^ :]*\.o\):.*|\1|p' $(NGX)/objs/Makefile) \
	    objs/ngx_modules.o >> $(NGX_BUILD)/configure.log
	objcopy --redefine-sym main=ngx_nginx_main $(NGX)/objs/src/core/nginx.o \
	    $(NGX_BUILD)/nginx-nomain.o
	rm -f $@
	ar rcs $@ $$(find $(NGX)/objs/src -name '*.o' ! -name nginx.o) \
	    $(NGX)/objs/ngx_modules.o $(NGX_BUILD)/nginx-nomain.o

$(OUT)/mod/%.o: $(TOP)/ngx_ecodoc_module/%.c $(NGX_LIB) \
                $(wildcard $(TOP)/ngx_ecodoc_module/*.h)
	@mkdir -p $(OUT)/mod
	$(CC) $(MOD_CFLAGS) -c -o $@ $<

# the module's scripts made C as config makes them (its list of them)
MOD_SCRIPTS := $(shell sed -n '/lua2c/{n;s/||.*//;p}' $(TOP)/config)

$(OUT)/mod/ngx_http_ecodoc_lua.c: $(wildcard $(TOP)/lua/*.lua) $(TOP)/config
	@mkdir -p $(OUT)/mod
	sh $(TOP)/scripts/lua2c $(TOP)/lua $@ $(MOD_SCRIPTS)

$(OUT)/mod/ngx_http_ecodoc_lua.o: $(OUT)/mod/ngx_http_ecodoc_lua.c $(NGX_LIB)
	$(CC) $(MOD_CFLAGS) -c -o $@ $<

vpath %.c $(TOP)/ca-tools $(TOP)/ngx_ecodoc_module

$(OUT)/ca/%.o: %.c $(wildcard $(TOP)/ca-tools/*.h $(TOP)/ngx_ecodoc_module/*.h)
	@mkdir -p $(OUT)/ca
	$(CC) $(CA_CFLAGS) -Dmain=ecodoc_ca_main -c -o $@ $<

$(OUT)/ca/ecodoc_ca_lua.o: $(CA_LUA)
	@mkdir -p $(OUT)/ca
	$(CC) $(CA_CFLAGS) -c -o $@ $<

$(CA_LIB): $(CA_OBJS)
	rm -f $@
	ar rcs $@ $^

$(OUT)/replay.o: $(TOP)/fuzz/replay.c
	@mkdir -p $(OUT)
	$(CC) $(CC_FLAGS) -Wall -Werror -c -o $@ $<

# each harness, fuzz/NAME/NAME.c
.SECONDEXPANSION:
$(addprefix $(OUT)/,$(MOD_HARNESSES)): $(OUT)/%: $(TOP)/fuzz/$$*/$$*.c \
        $(TOP)/fuzz/ngx_fuzz.h $(MOD_OBJS) $(NGX_LIB) \
        $(filter $(OUT)/replay.o,$(MAIN_LINK))
	$(CC) $(MOD_CFLAGS) -o $@ $< $(MAIN_LINK) $(MOD_OBJS) $(NGX_LIB) \
	    $(NGX_LIBS)

$(addprefix $(OUT)/,$(CA_HARNESSES)): $(OUT)/%: $(TOP)/fuzz/$$*/$$*.c \
        $(CA_LIB) $(filter $(OUT)/replay.o,$(MAIN_LINK))
	$(CC) $(CA_CFLAGS) -o $@ $< $($*_WRAP) $(MAIN_LINK) $(CA_LIB) $(CA_LIBS) \
	    -lssl
