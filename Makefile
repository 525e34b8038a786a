# flow — top-level build.
#
#   make            build flowc, flowrun, libflow.{a,so}, flow.h   (into build/)
#   make check      build, then run every test suite (tests/suites/*.sh), plain and
#                   under ASan+UBSan, and a subset built with LLVM=0 (build/nollvm);
#                   ends with one line "N passed, M failed"
#   make LLVM=0     build without LLVM: lambdas are interpreted (no JIT)
#   make example    build, then run the word-count example
#   make bench      benchmarks (bench/), figures and ratios against the peers
#   make fuzz       libFuzzer targets, long (FUZZ_SECONDS each, default 600)
#   make install PREFIX=/usr/local
#   make test T=tests/errors/unknown_name.flow      run one golden test
#   make golden T=tests/errors/unknown_name.flow    rewrite one expectation
#
# Sources are discovered by directory, so adding a file needs no edit here:
#   grammar/flow.l grammar/flow.y   -> scanner and parser (part of flowc)
#   compiler/*.c                    -> flowc (compiler/main.c holds main)
#   runtime/*.c                     -> libflow (runtime/main.c holds flowrun's main)
#   tests/unit/test_*.c             -> one cmocka binary each
#   tests/lib/*.c                   -> tests/lib/lib<name>.so (test task libraries)
#   examples/*/*.c                  -> examples/<ex>/lib<name>.so (beside the .flow)

.DEFAULT_GOAL := all
CC       ?= cc
BUILD    ?= build
PREFIX   ?= /usr/local
LLVM     ?= 1
SANITIZE ?= 0

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS   ?= -O2 -g
override CFLAGS += -std=gnu11 $(WARN) -fPIC -Iruntime/include -iquote runtime -iquote compiler -I$(BUILD)/gen
LDLIBS   := -lffi -lyaml -lsqlite3 -lcrypto -lpthread -ldl -lm

ifeq ($(SANITIZE),1)
  override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  override LDFLAGS += -fsanitize=address,undefined
endif

ifeq ($(LLVM),1)
  LLVM_CONFIG ?= $(shell command -v llvm-config-14 || command -v llvm-config)
  override CFLAGS += -DFLOW_HAVE_LLVM=1 $(if $(LLVM_CONFIG),-I$(shell $(LLVM_CONFIG) --includedir))
  LDLIBS  += $(if $(LLVM_CONFIG),-L$(shell $(LLVM_CONFIG) --libdir) -lLLVM-14)
endif

# --- dependencies: installed through apt-get when missing --------------------
DEB_PACKAGES := flex bison llvm-dev libffi-dev libyaml-dev libsqlite3-dev libssl-dev \
                libcmocka-dev pkg-config clang libclang-rt-14-dev
DEPS_STAMP   := $(BUILD)/.deps

$(DEPS_STAMP):
	@sh .ci/deps.sh $(DEB_PACKAGES)
	@mkdir -p $(BUILD) && touch $@

# --- sources -----------------------------------------------------------------
GEN        := $(BUILD)/gen
PARSER_C   := $(GEN)/parser.c
LEXER_C    := $(GEN)/lexer.c
COMP_SRC   := $(filter-out compiler/main.c,$(wildcard compiler/*.c))
RT_SRC     := $(filter-out runtime/main.c,$(wildcard runtime/*.c))
ifneq ($(wildcard grammar/flow.y),)
GRAMMAR_OBJ := $(BUILD)/obj/gen/parser.o $(BUILD)/obj/gen/lexer.o
GRAMMAR_H   := $(GEN)/parser.h
endif
COMP_OBJ   := $(COMP_SRC:%.c=$(BUILD)/obj/%.o) $(GRAMMAR_OBJ)
RT_OBJ     := $(RT_SRC:%.c=$(BUILD)/obj/%.o)
HEADERS    := $(wildcard compiler/*.h runtime/*.h runtime/include/*.h)

FLOWC      := $(BUILD)/bin/flowc
FLOWRUN    := $(BUILD)/bin/flowrun
LIBA       := $(BUILD)/lib/libflow.a
LIBSO      := $(BUILD)/lib/libflow.so
FLOW_H     := $(BUILD)/include/flow.h

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TESTLIB_SRC:= $(wildcard tests/lib/*.c)
TESTLIBS   := $(TESTLIB_SRC:tests/lib/%.c=tests/lib/lib%.so)
EX_SRC     := $(wildcard examples/*/*.c)
EX_LIBS    := $(foreach s,$(EX_SRC),$(dir $(s))lib$(notdir $(s:.c=.so)))

.PHONY: all check check-plain check-sanitize check-nollvm example bench fuzz install clean test golden deps \
        unit testlibs examples-libs
all: $(DEPS_STAMP) $(FLOWC) $(FLOWRUN) $(LIBA) $(LIBSO) $(FLOW_H)

deps: $(DEPS_STAMP)

$(GEN)/parser.c: grammar/flow.y | $(DEPS_STAMP)
	@mkdir -p $(GEN)
	bison -Wall -Werror --defines=$(GEN)/parser.h -o $@ $<
$(GEN)/parser.h: $(GEN)/parser.c
$(GEN)/lexer.c: grammar/flow.l $(GEN)/parser.h | $(DEPS_STAMP)
	@mkdir -p $(GEN)
	flex --header-file=$(GEN)/lexer.h -o $@ $<

$(BUILD)/obj/gen/%.o: $(GEN)/%.c $(HEADERS) $(GEN)/parser.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-unused-function -Wno-missing-prototypes -Wno-sign-compare -c $< -o $@
$(BUILD)/obj/%.o: %.c $(HEADERS) $(GRAMMAR_H) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBA): $(RT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(LIBSO): $(RT_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libflow.so -o $@ $^ $(LDLIBS)
$(FLOW_H): runtime/include/flow.h
	@mkdir -p $(dir $@)
	cp $< $@
$(FLOWC): $(BUILD)/obj/compiler/main.o $(COMP_OBJ) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(BUILD)/obj/compiler/main.o $(COMP_OBJ) $(LIBA) $(LDLIBS)
$(FLOWRUN): $(BUILD)/obj/runtime/main.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -rdynamic -o $@ $< -Wl,--whole-archive $(LIBA) -Wl,--no-whole-archive $(LDLIBS)

# --- tests -------------------------------------------------------------------
$(BUILD)/tests/test_%: tests/unit/test_%.c $(COMP_OBJ) $(LIBA) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -rdynamic -o $@ $< $(COMP_OBJ) $(LIBA) $(LDLIBS) -lcmocka

# test task libraries are built without sanitizers: they are dlopened by flowrun
tests/lib/lib%.so: tests/lib/%.c runtime/include/flow.h
	$(CC) -O1 -g -shared -fPIC -Wall -Iruntime/include -o $@ $<
define EXLIB_RULE
$(dir $(1))lib$(notdir $(1:.c=.so)): $(1) runtime/include/flow.h
	$$(CC) -O2 -g -shared -fPIC -Wall -Iruntime/include -o $$@ $$<
endef
$(foreach s,$(EX_SRC),$(eval $(call EXLIB_RULE,$(s))))

unit: $(UNIT_BIN)
testlibs: $(TESTLIBS) $(EX_LIBS)

# check: every suite in tests/suites/ prints "PASS name" / "FAIL name" lines;
# tests/harness/summary.sh counts them and prints the closing line.
check: all unit testlibs
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

example: all testlibs
	@sh examples/run-example.sh $(BUILD)

bench: all testlibs
	@BUILD=$(BUILD) sh bench/run.sh

fuzz: $(DEPS_STAMP)
	@BUILD=$(BUILD) sh tests/fuzz/run.sh $(or $(FUZZ_SECONDS),600)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	    $(DESTDIR)$(PREFIX)/share/flow $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(FLOWC) $(FLOWRUN) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(FLOW_H) $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(LIBA) $(LIBSO) $(DESTDIR)$(PREFIX)/lib/
	sed 's|@PREFIX@|$(PREFIX)|' runtime/flow.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/flow.pc
	if [ -d stdlib ]; then cp -r stdlib/. $(DESTDIR)$(PREFIX)/share/flow/; fi
	for m in docs/man/*.1; do [ -f "$$m" ] && install -m 644 "$$m" $(DESTDIR)$(PREFIX)/share/man/man1/; done; true
	if [ -d editors/completion ]; then install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions && \
	    cp editors/completion/* $(DESTDIR)$(PREFIX)/share/bash-completion/completions/; fi

clean:
	rm -rf $(BUILD) $(TESTLIBS) $(EX_LIBS)
