# The two commands of the README: `make run` and `make test`. Both install what is needed
# first (scripts/install-deps.sh), then build with CMake.
BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc)
DEPS_STAMP  = $(BUILD)/.deps-installed

.PHONY: all deps build build-asan run test test-plain test-asan format clean

all: build

$(DEPS_STAMP): scripts/install-deps.sh
	sh scripts/install-deps.sh
	mkdir -p $(BUILD) && touch $@

deps: $(DEPS_STAMP)

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DSPPD_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_ASAN) -j $(JOBS)

# Runs sppd in the foreground on 127.0.0.1:2525 (MX, STARTTLS), 127.0.0.1:2465 (SMTPS) and
# 127.0.0.1:2587 (submission) with etc/sppd.conf, delivering into var/Maildir/ through the
# bundled Maildir queue. var/ plays /var/qmail: var/control is etc/control, var/plugins the
# plugins this build made. Ctrl-C stops it.
run: build etc/control/servercert.pem
	mkdir -p var/Maildir/tmp var/Maildir/new var/Maildir/cur var/empty
	ln -sfn ../etc/control var/control
	ln -sfn "$(abspath $(BUILD))/plugins" var/plugins
	# As root, qmail-queue runs as the queue-bridge user (etc/sppd.conf): it owns the Maildir.
	if [ "$$(id -u)" -eq 0 ]; then chown -R sppd-queue: var/Maildir; fi
	exec $(BUILD)/bin/sppd-master --config etc/sppd.conf

# The self-signed certificate of `make run` (for localhost and 127.0.0.1), made once: chain
# and key in one file, as qmail's control/servercert.pem; readable by its owner only.
etc/control/servercert.pem: | $(DEPS_STAMP)
	umask 077 && tmp=$$(mktemp -d) && \
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
	  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	  -keyout "$$tmp/key.pem" -out "$$tmp/cert.pem" 2>"$$tmp/log" && \
	cat "$$tmp/cert.pem" "$$tmp/key.pem" > "$$tmp/servercert.pem" && \
	mv "$$tmp/servercert.pem" $@; status=$$?; \
	[ $$status -eq 0 ] || cat "$$tmp/log" >&2; rm -rf "$$tmp"; exit $$status

test: test-plain test-asan

test-plain: build
	cd $(BUILD) && ctest --output-on-failure -j 2

test-asan: build-asan
	cd $(BUILD_ASAN) && ctest --output-on-failure -j 2

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
