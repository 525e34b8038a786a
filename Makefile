# flow — top-level build.
#
#   make            build flowc, flowrun, libflow.{a,so}, flow.h (into build/); installs
#                   nothing, and stops with one line naming what is missing
#   make deps       install (apt-get) what the build and the tests need and is missing
#                   (.ci/deps.sh: probes commands and headers, not package names)
#   make check      deps, build, then run every test suite (tests/suites/*.sh), plain and
#                   under ASan+UBSan, and a subset built with LLVM=0 (build/nollvm);
#                   ends with one line "N passed, M failed"
#   make example    deps, build, then run the word-count example
#   make LLVM=0     build without LLVM: lambdas are interpreted (no JIT module)
#   make bench      benchmarks (bench/), figures and ratios against the peers
#   make fuzz       libFuzzer targets, long (FUZZ_SECONDS each, default 600)
#   make install   [PREFIX=/usr/local] [DESTDIR=] [BINDIR= LIBDIR= INCLUDEDIR= DATADIR= MANDIR=]
#   make uninstall (the same variables)
#   make test T=tests/errors/unknown_name.flow      run one golden test
#   make golden T=tests/errors/unknown_name.flow    rewrite one expectation
#
# CC, CPPFLAGS, CFLAGS, LDFLAGS and LDLIBS are honoured. Header dependencies are
# tracked (-MMD). The version is defined once, FLOW_VERSION in runtime/include/flow.h;
# libflow.so is libflow.so.VERSION with soname libflow.so.MAJOR, and exports only the
# flow_* API (-fvisibility=hidden, runtime/libflow.map); flowrun exports to task
# libraries only the task ABI (runtime/flowrun.dynlist). docs/runtime-abi.md.
# The JIT (runtime/core/jit.c) is the only code linked with LLVM: a module of its own,
# $(BUILD)/lib/flow/libflow-jit.so, that libflow opens with dlopen when a plan with
# lambdas asks for it (runtime/core/jit_load.c); libflow, flowrun and flow.pc need no LLVM.
#
# Sources are discovered by directory, so adding a file needs no edit here:
#   grammar/flow.l grammar/flow.y   -> scanner and parser (part of flowc)
#   compiler/*.c                    -> flowc (compiler/main.c holds main)
#   runtime/core/*.c runtime/recorder/*.c -> libflow (the two layers of the library)
#   runtime/app/*.c                 -> flowrun only (runtime/app/main.c holds its main)
#   tests/unit/test_*.c             -> one cmocka binary each
#   tests/lib/*.c                   -> tests/lib/lib<name>.so (test task libraries)
#   examples/*/*.c                  -> examples/<ex>/lib<name>.so (beside the .flow)
#   stdlib/*.c, stdlib/std.flow     -> $(BUILD)/lib/flow/libflow-std.so, $(BUILD)/share/flow/std.flow

.DEFAULT_GOAL := all
CC       ?= cc
BUILD    ?= build
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
LIBDIR   ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATADIR  ?= $(PREFIX)/share
MANDIR   ?= $(DATADIR)/man
SYSTEMDDIR ?= $(PREFIX)/lib/systemd/system
LLVM     ?= 1
SANITIZE ?= 0

# the one version number, read from flow.h
VERSION  := $(shell sed -n 's/^.define FLOW_VERSION "\([0-9.]*\)".*/\1/p' runtime/include/flow.h)
SONAME   := libflow.so.$(firstword $(subst ., ,$(VERSION)))

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS   ?= -O2 -g
override CFLAGS += -std=gnu11 $(WARN) -fPIC -fvisibility=hidden -Iruntime/include -I$(BUILD)/gen
DEPFLAGS  = -MMD -MP
LIBS_PRIVATE := -lffi -lyaml -lsqlite3 -lnettle -lpthread -ldl -lm
# what the compiler's objects need besides libflow: jansson (flowc lsp, compiler/lsp.c)
FLOWC_LIBS   := -ljansson

ifeq ($(SANITIZE),1)
  override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  SAN_LDFLAGS := -fsanitize=address,undefined
endif

# LLVM is probed here, when make reads this file: `make check` and `make example`
# run `make deps` first and then a second make, so the probe sees what deps installed.
# Only the JIT module (JITMOD below) is compiled with LLVM's headers and linked with
# libLLVM; FLOW_HAVE_LLVM tells libflow that the build has a module to load.
ifeq ($(LLVM),1)
  LLVM_CONFIG ?= $(shell command -v llvm-config-14 || command -v llvm-config)
  LLVM_INCDIR := $(if $(LLVM_CONFIG),$(shell $(LLVM_CONFIG) --includedir 2>/dev/null))
  LLVM_LIBDIR := $(if $(LLVM_CONFIG),$(shell $(LLVM_CONFIG) --libdir 2>/dev/null))
  override CFLAGS += -DFLOW_HAVE_LLVM=1
  LLVM_LIBS := $(if $(LLVM_LIBDIR),-L$(LLVM_LIBDIR)) -lLLVM-14
endif
override LDLIBS += $(LIBS_PRIVATE)

# config-check: before anything is compiled, what the build needs is there, or one
# line names what is missing (and says `make deps`, or LLVM=0 for LLVM): never a
# half-configured build. Nothing is installed here.
CHECK_ENV = LLVM=$(LLVM) LLVM_CONFIG="$(LLVM_CONFIG)" CC="$(CC)" CPPFLAGS="$(CPPFLAGS)"

# --- sources -----------------------------------------------------------------
GEN        := $(BUILD)/gen
PARSER_C   := $(GEN)/parser.c
LEXER_C    := $(GEN)/lexer.c
COMP_SRC   := $(filter-out compiler/main.c,$(wildcard compiler/*.c))
# libflow: the core and the recorder; the app layer (the command line) is flowrun's
RT_SRC     := $(filter-out runtime/core/jit.c,$(wildcard runtime/core/*.c runtime/recorder/*.c))
APP_SRC    := $(filter-out runtime/app/main.c,$(wildcard runtime/app/*.c))
ifneq ($(wildcard grammar/flow.y),)
GRAMMAR_OBJ := $(BUILD)/obj/gen/parser.o $(BUILD)/obj/gen/lexer.o
GRAMMAR_H   := $(GEN)/parser.h
endif
COMP_OBJ   := $(COMP_SRC:%.c=$(BUILD)/obj/%.o) $(GRAMMAR_OBJ)
RT_OBJ     := $(RT_SRC:%.c=$(BUILD)/obj/%.o)
APP_OBJ    := $(APP_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ   := $(BUILD)/obj/compiler/main.o $(BUILD)/obj/runtime/app/main.o

# The layers, enforced by what each may include: the core sees only itself, the
# recorder the core, the app and the compiler what they use, tests everything.
# (docs/library.md, "Layers")
INC_CORE   := -iquote runtime/core
INC_REC    := $(INC_CORE) -iquote runtime/recorder
INC_APP    := $(INC_REC) -iquote runtime/app
$(BUILD)/obj/runtime/core/%.o: override CPPFLAGS += $(INC_CORE)
$(BUILD)/obj/runtime/recorder/%.o: override CPPFLAGS += $(INC_REC)
$(BUILD)/obj/runtime/app/%.o: override CPPFLAGS += $(INC_APP)
$(BUILD)/obj/compiler/%.o: override CPPFLAGS += -iquote compiler $(INC_CORE)
$(BUILD)/obj/gen/%.o: override CPPFLAGS += -iquote compiler $(INC_CORE)
$(BUILD)/tests/%: override CPPFLAGS += -iquote compiler -iquote tests/unit $(INC_APP)

FLOWC      := $(BUILD)/bin/flowc
FLOWRUN    := $(BUILD)/bin/flowrun
LIBA       := $(BUILD)/lib/libflow.a
LIBSO      := $(BUILD)/lib/libflow.so
LIBSO_REAL := $(BUILD)/lib/libflow.so.$(VERSION)
LIBSO_MAJ  := $(BUILD)/lib/$(SONAME)
FLOW_H     := $(BUILD)/include/flow.h
# the JIT module (runtime/core/jit.c, linked with LLVM), installed in $(LIBDIR)/flow/
JITMOD     := $(if $(filter 1,$(LLVM)),$(BUILD)/lib/flow/libflow-jit.so)

# the standard library: std.flow and its C library (stdlib/*.c), laid out in the
# build tree as in an install, so the built flowc finds std.flow in
# $(BUILD)/share/flow (bin/../share/flow) and flowc and flowrun find the library in
# $(BUILD)/lib/flow (runtime/core/modpath.h). docs/stdlib.md.
STD_SRC    := $(wildcard stdlib/*.c)
STD_OBJ    := $(STD_SRC:%.c=$(BUILD)/obj/%.o)
STDMOD     := $(BUILD)/lib/flow/libflow-std.so
STDFLOW    := $(BUILD)/share/flow/std.flow
STD_LIBS   := -lcurl -larchive -lnettle -ljansson

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TESTLIB_SRC:= $(wildcard tests/lib/*.c)
TESTLIBS   := $(TESTLIB_SRC:tests/lib/%.c=tests/lib/lib%.so)
EX_SRC     := $(wildcard examples/*/*.c)
EX_LIBS    := $(foreach s,$(EX_SRC),$(dir $(s))lib$(notdir $(s:.c=.so)))

.PHONY: image all check check-plain check-sanitize check-nollvm example bench report-png fuzz install uninstall \
        clean test golden deps config-check unit testlibs examples-libs
all: $(FLOWC) $(FLOWRUN) $(LIBA) $(LIBSO) $(LIBSO_MAJ) $(FLOW_H) $(JITMOD) $(STDMOD) $(STDFLOW)

deps:
	@$(CHECK_ENV) sh .ci/deps.sh

config-check:
	$(if $(VERSION),,$(error flow: no FLOW_VERSION "X.Y.Z" in runtime/include/flow.h))
	$(eval CONFIG_MISSING := $(shell $(CHECK_ENV) sh .ci/deps.sh --check build 2>&1))
	$(if $(CONFIG_MISSING),$(error $(CONFIG_MISSING)))

$(GEN)/parser.c: grammar/flow.y | config-check
	@mkdir -p $(GEN)
	bison -Wall -Werror --defines=$(GEN)/parser.h -o $@ $<
$(GEN)/parser.h: $(GEN)/parser.c
$(GEN)/lexer.c: grammar/flow.l $(GEN)/parser.h | config-check
	@mkdir -p $(GEN)
	flex --header-file=$(GEN)/lexer.h -o $@ $<

$(BUILD)/obj/gen/%.o: $(GEN)/%.c $(GEN)/parser.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(DEPFLAGS) -Wno-unused-function -Wno-missing-prototypes -Wno-sign-compare -c $< -o $@
# an object without its .d (built before -MMD, or the .d lost) is built again:
# otherwise a changed header would go unseen
$(BUILD)/obj/%.o: %.c $(BUILD)/obj/%.d $(GRAMMAR_H) | config-check
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(DEPFLAGS) -c $< -o $@
$(BUILD)/obj/%.d: ;
.PRECIOUS: $(BUILD)/obj/%.d

$(LIBA): $(RT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
# libflow.so.X.Y.Z (soname libflow.so.X), with the links libflow.so.X and libflow.so
$(LIBSO_REAL): $(RT_OBJ) runtime/libflow.map
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS) $(SAN_LDFLAGS) $(if $(SAN_LDFLAGS),,-Wl,-z,defs) -Wl,-soname,$(SONAME) \
	    -Wl,--version-script=runtime/libflow.map -o $@ $(RT_OBJ) $(LDLIBS)
$(LIBSO_MAJ) $(LIBSO): $(LIBSO_REAL)
	ln -sf $(notdir $<) $@
$(FLOW_H): runtime/include/flow.h
	@mkdir -p $(dir $@)
	cp $< $@
# The JIT module: core/jit.c alone sees LLVM's headers; it reaches libflow only through
# the table it is given when loaded (runtime/core/jit_abi.h), so it links nothing of
# libflow, and (without sanitizers, whose runtime is the program's) must resolve
# every symbol itself. libflow looks for it, as for every module of lib/flow/, in
# FLOW_MODULE_DIR after the places beside itself (runtime/core/modpath.c): the
# LIBDIR/flow given when building.
$(BUILD)/obj/runtime/core/jit.o: override CFLAGS += $(if $(LLVM_INCDIR),-I$(LLVM_INCDIR))
$(BUILD)/obj/runtime/core/modpath.o: override CFLAGS += -DFLOW_MODULE_DIR='"$(LIBDIR)/flow"'
$(BUILD)/lib/flow/libflow-jit.so: $(BUILD)/obj/runtime/core/jit.o
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS) $(SAN_LDFLAGS) $(if $(SAN_LDFLAGS),,-Wl,--no-undefined) -o $@ $< \
	    $(LLVM_LIBS) -lm
# std's C library: its tasks are exported (STD_TASK), the flow_* calls are resolved
# against flowrun when it is loaded, so it links nothing of libflow
$(BUILD)/obj/stdlib/%.o: override CPPFLAGS += -iquote stdlib
$(STDMOD): $(STD_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS) $(SAN_LDFLAGS) -o $@ $(STD_OBJ) $(STD_LIBS)
$(STDFLOW): stdlib/std.flow
	@mkdir -p $(dir $@)
	cp $< $@
$(FLOWC): $(BUILD)/obj/compiler/main.o $(COMP_OBJ) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(SAN_LDFLAGS) -o $@ $(BUILD)/obj/compiler/main.o $(COMP_OBJ) $(LIBA) $(LDLIBS) $(FLOWC_LIBS)
# flowrun: the app layer over all of libflow.a; its dynamic symbol table holds the
# task ABI and nothing else
$(FLOWRUN): $(BUILD)/obj/runtime/app/main.o $(APP_OBJ) $(LIBA) runtime/flowrun.dynlist
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(SAN_LDFLAGS) -Wl,--dynamic-list=runtime/flowrun.dynlist -o $@ $< \
	    $(APP_OBJ) -Wl,--whole-archive $(LIBA) -Wl,--no-whole-archive $(LDLIBS)

# --- tests -------------------------------------------------------------------
# unit tests link the internal functions from libflow.a, the app layer's objects and
# the compiler's: hidden visibility does not matter to a static link
$(BUILD)/tests/test_%: tests/unit/test_%.c $(COMP_OBJ) $(APP_OBJ) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -MF $@.d -MT $@ $(LDFLAGS) $(SAN_LDFLAGS) -rdynamic -o $@ $< \
	    $(COMP_OBJ) $(APP_OBJ) $(LIBA) $(LDLIBS) $(FLOWC_LIBS) -lcmocka

# test task libraries are built without sanitizers: they are dlopened by flowrun
tests/lib/lib%.so: tests/lib/%.c runtime/include/flow.h
	$(CC) $(CPPFLAGS) -O1 -g -shared -fPIC -Wall -Iruntime/include $(LDFLAGS) -o $@ $<
define EXLIB_RULE
$(dir $(1))lib$(notdir $(1:.c=.so)): $(1) runtime/include/flow.h
	$$(CC) $$(CPPFLAGS) -O2 -g -shared -fPIC -Wall -Iruntime/include $$(LDFLAGS) -o $$@ $$<
endef
$(foreach s,$(EX_SRC),$(eval $(call EXLIB_RULE,$(s))))

unit: $(UNIT_BIN) $(JITMOD)
testlibs: $(TESTLIBS) $(EX_LIBS)

# check: every suite in tests/suites/ prints "PASS name" / "FAIL name" lines;
# tests/harness/summary.sh counts them and prints the closing line. The build is a
# second make, after deps, so that it probes what deps installed.
check: deps
	@$(MAKE) --no-print-directory all unit testlibs
	@rm -f $(BUILD)/results.txt
	@BUILD=$(BUILD) sh tests/harness/run-suites.sh $(BUILD)/results.txt
	@$(MAKE) --no-print-directory check-sanitize
	@$(MAKE) --no-print-directory check-nollvm
	@sh tests/harness/summary.sh $(BUILD)/results.txt $(BUILD)/asan/results.txt \
	    $(BUILD)/nollvm/results.txt

check-sanitize:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SANITIZE=1 CFLAGS="-O1 -g" all unit
	@rm -f $(BUILD)/asan/results.txt
	@BUILD=$(BUILD)/asan SANITIZED=1 sh tests/harness/run-suites.sh $(BUILD)/asan/results.txt

# the interpreter-only configuration (LLVM=0): a subset — the unit tests and the run
# goldens under the inline executor
check-nollvm:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/nollvm LLVM=0 all unit
	@rm -f $(BUILD)/nollvm/results.txt
	@BUILD=$(BUILD)/nollvm NOLLVM=1 EXECUTORS=inline \
	    SUITES="tests/suites/10-unit.sh tests/suites/20-run.sh" \
	    sh tests/harness/run-suites.sh $(BUILD)/nollvm/results.txt

test: all unit testlibs
	@BUILD=$(BUILD) sh tests/harness/one-test.sh run $(T)
golden: all unit testlibs
	@BUILD=$(BUILD) sh tests/harness/one-test.sh update $(T)

example: deps
	@$(MAKE) --no-print-directory all testlibs
	@sh examples/run-example.sh $(BUILD)

# a local podman image of this build (runtime/image/build.sh; docs/distributed.md)
image: all
	@sh runtime/image/build.sh $(BUILD) $(VERSION)

bench: all testlibs
	@BUILD=$(BUILD) sh bench/run.sh

# docs/report.png: the screenshot of the run report that tests/suites/71-report.sh takes
# (a real run, rendered by headless Chromium)
report-png: all testlibs
	@BUILD=$(BUILD) REPORT_PNG=docs/report.png SUITES=tests/suites/71-report.sh \
		sh tests/harness/run-suites.sh $(BUILD)/report-png.txt

fuzz: deps
	@BUILD=$(BUILD) sh tests/fuzz/run.sh $(or $(FUZZ_SECONDS),600)

# --- install -----------------------------------------------------------------
# flow.pc: Libs for linking libflow.so, Libs.private for the static libflow.a
# (pkg-config --static); the version is FLOW_VERSION.
MANPAGES    := $(notdir $(wildcard docs/man/*.1))
COMPLETIONS := $(notdir $(wildcard editors/completion/*))
COMPDIR     := $(DATADIR)/bash-completion/completions
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
	    $(DESTDIR)$(DATADIR)/flow $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(FLOWC) $(FLOWRUN) $(DESTDIR)$(BINDIR)/
	install -m 644 $(FLOW_H) $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(LIBA) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(LIBSO_REAL) $(DESTDIR)$(LIBDIR)/
	if [ -n "$(JITMOD)" ]; then install -d $(DESTDIR)$(LIBDIR)/flow && \
	    install -m 755 $(JITMOD) $(DESTDIR)$(LIBDIR)/flow/; fi
	ln -sf libflow.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libflow.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@LIBS_PRIVATE@|$(strip $(LIBS_PRIVATE))|' \
	    runtime/flow.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/flow.pc
	install -d $(DESTDIR)$(LIBDIR)/flow
	install -m 644 $(STDFLOW) $(DESTDIR)$(DATADIR)/flow/
	install -m 755 $(STDMOD) $(DESTDIR)$(LIBDIR)/flow/
	for m in $(MANPAGES); do sed 's/"flow [0-9][0-9.]*"/"flow $(VERSION)"/' docs/man/$$m \
	    > $(DESTDIR)$(MANDIR)/man1/$$m && chmod 644 $(DESTDIR)$(MANDIR)/man1/$$m || exit 1; done
	if [ -n "$(COMPLETIONS)" ]; then install -d $(DESTDIR)$(COMPDIR) && \
	    install -m 644 $(addprefix editors/completion/,$(COMPLETIONS)) $(DESTDIR)$(COMPDIR)/; fi
	install -d $(DESTDIR)$(SYSTEMDDIR)
	sed 's|@BINDIR@|$(BINDIR)|g' examples/systemd/flowrun-serve@.service \
	    > $(DESTDIR)$(SYSTEMDDIR)/flowrun-serve@.service && \
	    chmod 644 $(DESTDIR)$(SYSTEMDDIR)/flowrun-serve@.service

# removes exactly what install put there (same variables), share/flow, and lib/flow
# once the module, all it held, is gone
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/flowc $(DESTDIR)$(BINDIR)/flowrun $(DESTDIR)$(INCLUDEDIR)/flow.h \
	    $(DESTDIR)$(LIBDIR)/libflow.a $(DESTDIR)$(LIBDIR)/libflow.so $(DESTDIR)$(LIBDIR)/$(SONAME) \
	    $(DESTDIR)$(LIBDIR)/libflow.so.$(VERSION) $(DESTDIR)$(LIBDIR)/pkgconfig/flow.pc \
	    $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(MANPAGES)) $(addprefix $(DESTDIR)$(COMPDIR)/,$(COMPLETIONS))
	rm -f $(DESTDIR)$(SYSTEMDDIR)/flowrun-serve@.service
	rm -f $(DESTDIR)$(LIBDIR)/flow/libflow-jit.so $(DESTDIR)$(LIBDIR)/flow/libflow-std.so
	if [ -d $(DESTDIR)$(LIBDIR)/flow ]; then rmdir $(DESTDIR)$(LIBDIR)/flow; fi
	rm -rf $(DESTDIR)$(DATADIR)/flow

clean:
	rm -rf $(BUILD) $(TESTLIBS) $(EX_LIBS)

# header dependencies written by -MMD
-include $(RT_OBJ:.o=.d) $(APP_OBJ:.o=.d) $(STD_OBJ:.o=.d) $(BUILD)/obj/runtime/core/jit.d $(COMP_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_BIN:=.d)
