# syntax=docker/dockerfile:1.7
# shelfsync-server image: static Go binary on distroless, non-root.
# Build context = repository root:
#   docker build -f deploy/compose/server.Dockerfile -t shelfsync-server .
#   docker buildx build --platform linux/amd64,linux/arm64 -f deploy/compose/server.Dockerfile .
# Only protocol/ and server/ are copied (server/go.mod replaces the protocol
# module with ../protocol), so the workspace file is switched off.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS TARGETARCH TARGETVARIANT
ARG VERSION=dev
# main package of the server, relative to server/
ARG SERVER_PKG=./cmd/shelfsync-server
ENV GOWORK=off CGO_ENABLED=0 GOFLAGS=-trimpath
WORKDIR /src
COPY protocol/go.mod protocol/go.sum ./protocol/
COPY server/go.mod server/go.sum ./server/
RUN --mount=type=cache,target=/go/pkg/mod \
    cd server && go mod download
COPY protocol/ ./protocol/
COPY server/ ./server/
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    cd server && \
    GOOS=$TARGETOS GOARCH=$TARGETARCH GOARM=${TARGETVARIANT#v} \
    go build -ldflags="-s -w -X main.version=${VERSION}" \
      -o /out/shelfsync-server "$SERVER_PKG"
# State and certificate directories owned by the distroless "nonroot" user
# (65532); an empty named volume mounted there starts with this ownership.
RUN install -d -m 0750 -o 65532 -g 65532 /out/var/lib/shelfsync /out/etc/shelfsync/pki

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/shelfsync-server /usr/local/bin/shelfsync-server
COPY --from=build --chown=65532:65532 /out/var/lib/shelfsync /var/lib/shelfsync
COPY --from=build --chown=65532:65532 /out/etc/shelfsync/pki /etc/shelfsync/pki
USER 65532:65532
WORKDIR /var/lib/shelfsync
# 8080 HTTP (API, dashboard, /healthz, /metrics); 8883 embedded MQTT broker
EXPOSE 8080 8883
ENTRYPOINT ["/usr/local/bin/shelfsync-server"]
CMD ["run", "--data", "/var/lib/shelfsync", "--http", "0.0.0.0:8080", "--mqtt", "0.0.0.0:8883"]
