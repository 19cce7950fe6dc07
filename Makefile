# epochfs: `make demo` sets up and runs the main job, `make test` sets up and runs the tests.
# Both run on a fresh Debian 12 machine as root; setup installs what is missing and is idempotent.
SHELL := /bin/bash
DEBS := fuse3 libfuse-dev zlib1g-dev pkg-config build-essential python3 bindfs fio attr acl psmisc postgresql restic
PREFIX ?= /usr/local

.PHONY: setup deps build install test demo bench clean

setup: deps build install

deps:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
	@if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ ! -f native/build/Release/epochfs_sys.node ] || [ ! -f node_modules/fuse-native/build/Release/fuse.node ]; then \
	  npm ci --no-fund --no-audit; \
	fi

build:
	npm run build --silent

# The epochfs command and the mount helper (mount -t fuse.epochfs, fstab) on PATH.
install:
	ln -sf $(CURDIR)/dist/src/cli/main.js $(PREFIX)/bin/epochfs
	ln -sf $(CURDIR)/dist/tools/inspect.js $(PREFIX)/bin/epochfs-inspect
	install -m 0755 mount/mount.fuse.epochfs /sbin/mount.fuse.epochfs

test: setup
	@rm -f .vitest-results.json; status=0; \
	npx vitest run --reporter=default --reporter=json --outputFile.json=.vitest-results.json || status=$$?; \
	[ -f .vitest-results.json ] && node test/summary.mjs .vitest-results.json; exit $$status

demo: setup
	bash examples/demo.sh

bench: setup
	bash bench/fs.sh

clean:
	rm -rf dist native/build node_modules/fuse-native/build
