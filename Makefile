# corio's front door. `make demo` and `make test` work on a fresh Debian 12
# machine as root: each installs what is missing, configures, builds, runs.
.PHONY: all deps release debug asan tsan observe-off demo test test-release test-asan test-tsan bench micro format format-check tidy checkheaders layers docs install deb check clean

JOBS ?= 2
PREFIX ?= /usr/local
CTEST_FLAGS ?= --output-on-failure -j $(JOBS) --timeout 300

all: release

deps:
	@bash scripts/install-deps.sh

# observe-off: observation compiled out (CORIO_OBSERVE=OFF), library and
# tools only; `make test` builds it so that the switch keeps compiling.
release debug asan tsan observe-off: deps
	cmake --preset $@
	cmake --build --preset $@ -j $(JOBS)

demo: release
	./build/release/tools/demo/corio-demo

test-release: release
	ctest --preset release $(CTEST_FLAGS)

test-asan: asan
	ctest --preset asan $(CTEST_FLAGS)

# The whole suite under TSan too: it is cheap, and the cross-thread parts
# (post, later executors and channels) must be race-free.
test-tsan: tsan
	ctest --preset tsan $(CTEST_FLAGS)

test: test-release test-asan test-tsan observe-off
	@echo "make test: release, asan and tsan suites passed; observe-off builds"

bench: release
	./build/release/bench/corio-bench --workload all

# Google Benchmark micro-benchmarks of the primitives (bench/micro/), as
# medians of five repetitions.
micro: release
	./build/release/bench/micro/corio-micro --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

format:
	git ls-files '*.hpp' '*.cpp' | xargs clang-format -i

format-check: deps
	git ls-files '*.hpp' '*.cpp' | xargs clang-format --dry-run --Werror

# Every header compiles alone (cmake/CheckHeaders.cmake).
checkheaders: release
	cmake --build --preset release --target checkheaders -j $(JOBS)

# No #include points to a higher layer (README, "Architecture").
layers: deps
	python3 tools/check_layers.py .
	python3 tools/check_layers.py --self-test

# The HTML site (build/docs/html/index.html): the API reference from the
# headers and the guide in docs/guide/. Fails on any Doxygen warning (an
# undocumented public entity among them) and on a guide code block that is
# not a snippet of a compiled example (tools/check_docs.py).
docs: deps
	python3 tools/check_docs.py .
	mkdir -p build/docs
	doxygen docs/Doxyfile
	@echo "make docs: build/docs/html/index.html"

# The library, headers, CMake package and corio.pc under $(PREFIX).
install: release
	cmake --install build/release --prefix $(PREFIX)

# A Debian package (libcorio-dev, under /usr) in build/release/packages/.
deb: release
	cd build/release && cpack -G DEB
	@ls build/release/packages/*.deb

# The gates that .ci/run passes before the tests: format, clang-tidy at zero
# warnings, self-contained headers, layer direction, the documentation.
check: format-check layers checkheaders tidy docs
	@echo "make check: format, layers, checkheaders, clang-tidy and docs passed"

tidy: release
	git ls-files 'src/*.cpp' 'bench/*.cpp' 'tools/*.cpp' tests/unit/smoke_test.cpp | xargs -P$(JOBS) -n1 clang-tidy -p build/release --quiet --warnings-as-errors='*' 

clean:
	rm -rf build
