# The two commands of the Quick start, and a few more.
#   make demo       install what is missing, build, run the demonstration
#   make test       install what is missing, build, run every test (CTest)
#   make test-asan  the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-tsan  the same under ThreadSanitizer (build-tsan; slow: build it with nice and -j2)
#   make bench      run trellis-bench bson against libbson
#   make package    build/packages: libtrellis0, libtrellis-dev, trellis-tools (.deb) and a .tar.gz
.PHONY: deps build test demo test-asan build-asan test-tsan build-tsan bench package clean

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

clean:
	rm -rf build build-asan build-tsan
