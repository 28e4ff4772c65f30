# Workspace of eight self-contained research projects (see README.md).
# Each project folder has its own Makefile with setup / train / test / bench / clean;
# this file only fans out over them.

# The project folders that exist. Each project's issue adds its folder here.
PROJECTS := hc-smoe ebflow meow-rl tdil dfac qcsgm dlsm driveenv-nerf

LOGDIR := .logs

.PHONY: help setup-all test-all train-all bench-all clean-all list
help:
	@echo "make test-all    run every project's tests (continues past failures, prints a summary)"
	@echo "make train-all   run every project's embedded default training job"
	@echo "make bench-all   run every project's benchmarks"
	@echo "make setup-all   create every project's .venv"
	@echo "make clean-all   remove every project's .venv and run outputs"
	@echo "make <project>-test / <project>-train / <project>-bench / <project>-setup"
	@echo "projects: $(if $(PROJECTS),$(PROJECTS),(none yet))"

list:
	@for p in $(PROJECTS); do echo $$p; done

# Run one target in every project, keep going past failures, then print one line per
# project and a closing "N passed, M failed" line; exit non-zero if any project failed.
# Usage: $(call fan_out,<target>)
define fan_out
	@mkdir -p $(LOGDIR); \
	if [ -z "$(strip $(PROJECTS))" ]; then \
	  echo "no project folders yet: nothing to $(1)"; \
	  echo "0 passed, 0 failed"; exit 0; \
	fi; \
	pass=0; fail=0; summary=""; \
	for p in $(PROJECTS); do \
	  echo "=== $$p: make $(1) ==="; \
	  start=$$(date +%s); \
	  if $(MAKE) --no-print-directory -C $$p $(1) 2>&1 | tee $(LOGDIR)/$$p-$(1).log; \
	     [ $${PIPESTATUS[0]} -eq 0 ]; then \
	    status=PASS; pass=$$((pass+1)); \
	  else \
	    status=FAIL; fail=$$((fail+1)); \
	  fi; \
	  secs=$$(( $$(date +%s) - start )); \
	  summary="$$summary$$(printf '%-16s %s  %5ss  (log: $(LOGDIR)/%s-$(1).log)' $$p $$status $$secs $$p)\n"; \
	done; \
	echo; echo "=== summary: make $(1) ==="; printf "$$summary"; \
	echo "$$pass passed, $$fail failed"; \
	[ $$fail -eq 0 ]
endef

SHELL := /bin/bash

setup-all:
	$(call fan_out,setup)
test-all:
	$(call fan_out,test)
train-all:
	$(call fan_out,train)
bench-all:
	$(call fan_out,bench)
clean-all:
	@for p in $(PROJECTS); do $(MAKE) --no-print-directory -C $$p clean; done
	rm -rf $(LOGDIR)

# Shortcuts: make ebflow-test, make qcsgm-train, ...
$(addsuffix -setup,$(PROJECTS)): %-setup:
	$(MAKE) -C $* setup
$(addsuffix -test,$(PROJECTS)): %-test:
	$(MAKE) -C $* test
$(addsuffix -train,$(PROJECTS)): %-train:
	$(MAKE) -C $* train
$(addsuffix -bench,$(PROJECTS)): %-bench:
	$(MAKE) -C $* bench
