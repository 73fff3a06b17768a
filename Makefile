# dht: build, image, tests, and the container deployments under deploy/.
# `make help` lists the targets.

GO      ?= go
DOCKER  ?= docker
IMAGE   ?= dht:dev
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# The compose tool: the docker CLI plugin if present, else docker-compose.
COMPOSE ?= $(shell $(DOCKER) compose version >/dev/null 2>&1 && echo "$(DOCKER) compose" || echo docker-compose)
COMPOSE_FILE    := deploy/compose.yaml
COMPOSE_PROJECT ?= dht

# The image's build context: just the static binary.
IMAGE_CONTEXT := bin/image

.PHONY: all build image test test-short e2e e2e-clean vet compose-up compose-down k8s clean help

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
	DHT_UID=$$(id -u) DHT_GID=$$(id -g) $(COMPOSE) -p $(COMPOSE_PROJECT) -f $(COMPOSE_FILE) up

## compose-down: stop and remove the compose cluster
compose-down:
	DHT_PASSWORD=unused $(COMPOSE) -p $(COMPOSE_PROJECT) -f $(COMPOSE_FILE) down --remove-orphans

## k8s: render the Kubernetes manifests (kubectl kustomize) to stdout
k8s:
	kubectl kustomize deploy/k8s

## clean: remove build output
clean:
	rm -rf bin

## help: this list
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)
