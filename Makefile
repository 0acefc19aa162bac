# The two commands of the Quick start, and a few more.
#   make demo       install what is missing, build, run the demonstration
#   make test       install what is missing, build, run every test (CTest)
#   make test-asan  the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-tsan  the same under ThreadSanitizer (build-tsan; slow: build it with nice and -j2)
#   make bench      run trellis-bench bson against libbson
#   make package    build/packages: libtrellis0, libtrellis-dev, trellis-tools (.deb) and a .tar.gz
#   make fuzz       build-fuzz/bin/fuzz_<name>: libFuzzer targets, clang-16, ASan + UBSan
#   make fuzz-smoke run each of them FUZZ_SECONDS (10) seconds on its seeds (docs/fuzzing.md)
.PHONY: deps build test demo test-asan build-asan test-tsan build-tsan bench package clean fuzz fuzz-seeds fuzz-smoke

FUZZ_SECONDS ?= 10
FUZZ_TARGETS = bson json uri toml frame hello scram sim
SPEC_DIR ?= $(if $(TRELLIS_SPEC_DIR),$(TRELLIS_SPEC_DIR),../shared/specs)

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake --preset default
	cmake --build --preset default

test: build
	ctest --preset default

demo: build
	@bash scripts/demo.sh build

build-asan: deps
	cmake --preset asan
	cmake --build --preset asan

test-asan: build-asan
	ctest --preset asan

build-tsan: deps
	cmake --preset tsan
	cmake --build --preset tsan

test-tsan: build-tsan
	ctest --preset tsan

bench: build
	./build/bin/trellis-bench bson

package: build
	cd build && cpack

fuzz:
	@bash scripts/install-deps.sh --fuzz
	cmake --preset fuzz
	cmake --build --preset fuzz

# Seeds from the spec tests, into build-fuzz/fuzz-seeds (never committed).
fuzz-seeds:
	/usr/bin/python3 tests/fuzz/make_seeds.py $(SPEC_DIR) build-fuzz/fuzz-seeds

fuzz-smoke: fuzz-seeds
	@[ -d build-fuzz/bin ] || { echo "make fuzz-smoke: no build-fuzz (run make fuzz first)"; exit 1; }
	sh tests/fuzz/libfuzzer_smoke.sh build-fuzz build-fuzz $(FUZZ_SECONDS) tests/fuzz/seeds build-fuzz/fuzz-seeds $(FUZZ_TARGETS)

clean:
	rm -rf build build-asan build-tsan build-fuzz
