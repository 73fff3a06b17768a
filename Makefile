# dht: build, image, tests, and the container deployments under deploy/.
# `make help` lists the targets.

GO      ?= go
DOCKER  ?= docker
IMAGE   ?= dht:dev
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# The compose tool: the docker CLI plugin if present, else docker-compose.
COMPOSE ?= $(shell $(DOCKER) compose version >/dev/null 2>&1 && echo "$(DOCKER) compose" || echo docker-compose)
# COMPOSE_TLS=1 adds deploy/compose.tls.yaml: TLS, with the certificates of tls-certs.
COMPOSE_FILES   := -f deploy/compose.yaml $(if $(COMPOSE_TLS),-f deploy/compose.tls.yaml)
TLS_DIR         := deploy/tls
COMPOSE_PROJECT ?= dht

# The image's build context: just the static binary.
IMAGE_CONTEXT := bin/image

.PHONY: all build image test test-short e2e e2e-clean vet compose-up compose-down tls-certs k8s clean help

all: build

## build: static binary (CGO_ENABLED=0) at ./bin/dht
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/dht ./cmd/dht

## image: the dht:dev image, FROM scratch around bin/dht; pulls nothing
image: build
	mkdir -p $(IMAGE_CONTEXT)/data
	cp bin/dht $(IMAGE_CONTEXT)/dht
	$(DOCKER) build --build-arg VERSION=$(VERSION) -f deploy/Dockerfile -t $(IMAGE) $(IMAGE_CONTEXT)

## test: every test, race detector on (container tests included; they skip without Docker)
test:
	$(GO) test -race ./...

## test-short: every test but the slow ones (container tests skip)
test-short:
	$(GO) test -race -short ./...

## e2e: the container tests alone, verbose
e2e:
	$(GO) test -count=1 -v ./e2e/docker/

## e2e-clean: remove containers, networks and images left by killed container tests
e2e-clean:
	-$(DOCKER) ps -aq --filter label=dht.e2e | xargs -r $(DOCKER) rm -f
	-$(DOCKER) network prune -f --filter label=dht.e2e
	-$(DOCKER) image prune -af --filter label=dht.e2e

## vet: go vet and gofmt
vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }

## compose-up: run the five-node experiment of deploy/compose.yaml (Ctrl-C, then compose-down)
compose-up: image
	mkdir -p deploy/bench-results
	DHT_PASSWORD=$${DHT_PASSWORD:-$$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')} \
	DHT_UID=$$(id -u) DHT_GID=$$(id -g) $(COMPOSE) -p $(COMPOSE_PROJECT) $(COMPOSE_FILES) up

## compose-down: stop and remove the compose cluster
compose-down:
	DHT_PASSWORD=unused $(COMPOSE) -p $(COMPOSE_PROJECT) $(COMPOSE_FILES) down --remove-orphans

## tls-certs: a throwaway CA and a node certificate (compose addresses, dht-N.dht, localhost) in deploy/tls and deploy/k8s/tls/certs
tls-certs:
	mkdir -p $(TLS_DIR)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
		-subj "/CN=dht throwaway CA" -keyout $(TLS_DIR)/ca.key -out $(TLS_DIR)/ca.crt
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-subj "/CN=dht node" -keyout $(TLS_DIR)/node.key -out $(TLS_DIR)/node.csr
	printf '%s\n' "subjectAltName=IP:10.77.0.11,IP:10.77.0.12,IP:10.77.0.13,IP:10.77.0.14,IP:10.77.0.15,IP:127.0.0.1,DNS:localhost,DNS:dht-0.dht,DNS:dht-1.dht,DNS:dht-2.dht,DNS:dht-3.dht,DNS:dht-4.dht" \
		"extendedKeyUsage=serverAuth,clientAuth" > $(TLS_DIR)/node.ext
	openssl x509 -req -in $(TLS_DIR)/node.csr -CA $(TLS_DIR)/ca.crt -CAkey $(TLS_DIR)/ca.key -CAcreateserial \
		-days 365 -extfile $(TLS_DIR)/node.ext -out $(TLS_DIR)/node.crt
	# The nodes run as 65532 in their containers: they must read the key.
	chmod 644 $(TLS_DIR)/node.key
	rm -f $(TLS_DIR)/node.csr $(TLS_DIR)/node.ext
	mkdir -p deploy/k8s/tls/certs
	cp $(TLS_DIR)/ca.crt $(TLS_DIR)/node.crt $(TLS_DIR)/node.key deploy/k8s/tls/certs/

## k8s: render the Kubernetes manifests (kubectl kustomize) to stdout
k8s:
	kubectl kustomize deploy/k8s

## clean: remove build output
clean:
	rm -rf bin

## help: this list
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)
